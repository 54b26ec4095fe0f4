package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// wireClient is the load generator's HTTP/1.1 client: one keep-alive
// connection, requests written straight to it and responses read just far
// enough to know their status and skip their body. The bench's clients
// share the two cores with the server they measure, and net/http's client
// (two goroutines and a channel hand-off per connection, a header map per
// response) costs about as much CPU as the server's own HTTP layer; this one
// costs a fraction of it, like an external tool such as wrk would.
type wireClient struct {
	addr string
	conn net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
}

func newWireClient(addr string) *wireClient { return &wireClient{addr: addr} }

// Close drops the connection.
func (c *wireClient) Close() error {
	if c.conn == nil {
		return nil
	}
	err := c.conn.Close()
	c.conn = nil
	return err
}

// do sends one request and returns the response's status code. Any error
// drops the connection; the next request dials again.
func (c *wireClient) do(method, path, token string, body []byte) (int, error) {
	if c.conn == nil {
		conn, err := net.DialTimeout("tcp", c.addr, 10*time.Second)
		if err != nil {
			return 0, err
		}
		c.conn, c.r, c.w = conn, bufio.NewReaderSize(conn, 16<<10), bufio.NewWriterSize(conn, 4<<10)
	}
	_ = c.conn.SetDeadline(time.Now().Add(30 * time.Second))
	code, keep, err := c.roundTrip(method, path, token, body)
	if err != nil || !keep {
		c.Close()
	}
	return code, err
}

func (c *wireClient) roundTrip(method, path, token string, body []byte) (code int, keepAlive bool, err error) {
	w := c.w
	w.WriteString(method)
	w.WriteByte(' ')
	w.WriteString(path)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(c.addr)
	w.WriteString("\r\nAuthorization: Bearer ")
	w.WriteString(token)
	w.WriteString("\r\nContent-Type: application/json\r\nContent-Length: ")
	w.WriteString(strconv.Itoa(len(body)))
	w.WriteString("\r\n\r\n")
	w.Write(body)
	if err := w.Flush(); err != nil {
		return 0, false, err
	}

	line, err := c.line()
	if err != nil {
		return 0, false, err
	}
	// "HTTP/1.1 200 OK"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, false, fmt.Errorf("bad status line %q", line)
	}
	code, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, false, fmt.Errorf("bad status line %q", line)
	}
	length, chunked, keepAlive := int64(-1), false, true
	for {
		h, err := c.line()
		if err != nil {
			return 0, false, err
		}
		if len(h) == 0 {
			break
		}
		name, value, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return 0, false, fmt.Errorf("bad header line %q", h)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.ParseInt(string(value), 10, 64); err != nil || length < 0 {
				return 0, false, fmt.Errorf("bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			keepAlive = !bytes.EqualFold(value, []byte("close"))
		}
	}
	switch {
	case chunked:
		err = c.skipChunked()
	case length >= 0:
		_, err = c.r.Discard(int(length))
	default: // no length: the body runs to the end of the connection
		_, err = io.Copy(io.Discard, c.r)
		keepAlive = false
	}
	return code, keepAlive, err
}

// line reads one CRLF-terminated line without its CRLF. The slice is only
// valid until the next read.
func (c *wireClient) line() ([]byte, error) {
	l, err := c.r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, errors.New("response line longer than 16 KiB")
		}
		return nil, err
	}
	return bytes.TrimRight(l, "\r\n"), nil
}

func (c *wireClient) skipChunked() error {
	for {
		l, err := c.line()
		if err != nil {
			return err
		}
		size, _, _ := bytes.Cut(l, []byte(";"))
		n, err := strconv.ParseInt(string(bytes.TrimSpace(size)), 16, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("bad chunk size %q", l)
		}
		if n == 0 { // trailers, then an empty line
			for {
				t, err := c.line()
				if err != nil || len(t) == 0 {
					return err
				}
			}
		}
		if _, err := c.r.Discard(int(n) + 2); err != nil {
			return err
		}
	}
}
