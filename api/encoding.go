package api

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/seatledger/seatledger/domain"
)

// bodyEncodings returns the codings of a request body (Content-Encoding),
// in the order they were applied; nil for none. Only gzip (and identity) is
// read: any other coding is a 415 naming it, with Accept-Encoding saying
// what is (RFC 9110, 15.4.16).
func bodyEncodings(h http.Header) ([]string, error) {
	var out []string
	for _, v := range h.Values("Content-Encoding") {
		for _, c := range strings.Split(v, ",") {
			switch c = strings.ToLower(strings.TrimSpace(c)); c {
			case "", "identity":
			case "gzip", "x-gzip":
				out = append(out, "gzip")
			default:
				hdr := http.Header{}
				hdr.Set("Accept-Encoding", "gzip")
				e := httpErrorf(http.StatusUnsupportedMediaType, domain.CodeInvalidRequest, "Content-Encoding",
					"Content-Encoding %s is not supported: send the body as is or gzip-compressed", c)
				e.Header = hdr
				return nil, e
			}
		}
	}
	return out, nil
}

// decodeBodyEncodings undoes the codings of a body read in full. Each
// decoded layer is bounded by MaxBodyBytes like the body itself, so a small
// compressed body that would expand without bound (a decompression bomb)
// is refused with 413 after reading at most MaxBodyBytes+1 bytes of it.
func decodeBodyEncodings(body []byte, codings []string) ([]byte, error) {
	for i := len(codings) - 1; i >= 0 && len(body) > 0; i-- {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, invalidRequest("body", "the gzip-encoded body could not be decompressed: %v", err)
		}
		out, err := io.ReadAll(io.LimitReader(zr, MaxBodyBytes+1))
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, invalidRequest("body", "the gzip-encoded body is truncated")
			}
			return nil, invalidRequest("body", "the gzip-encoded body could not be decompressed: %v", err)
		}
		if len(out) > MaxBodyBytes {
			return nil, errBodyTooLarge()
		}
		body = out
	}
	return body, nil
}
