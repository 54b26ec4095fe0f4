package api

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/gin-gonic/gin"
	"github.com/goccy/go-yaml"
)

// openAPIYAML is the API's OpenAPI 3.1 document, written by hand next to
// docs/API.md (api/openapi_test.go keeps it in step with the router, the
// answers and API.md).
//
//go:embed openapi.yaml
var openAPIYAML []byte

var openAPI = sync.OnceValues(func() ([]byte, string) {
	var doc any
	if err := yaml.Unmarshal(openAPIYAML, &doc); err != nil {
		panic(fmt.Sprintf("api: openapi.yaml: %v", err))
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic(fmt.Sprintf("api: openapi.yaml as JSON: %v", err))
	}
	sum := sha256.Sum256(b)
	return b, `"` + hex.EncodeToString(sum[:16]) + `"`
})

// OpenAPIDocument is the JSON document GET /openapi.json serves.
func OpenAPIDocument() []byte {
	b, _ := openAPI()
	return b
}

// openAPIDoc answers GET /openapi.json: the document, with an ETag (its
// content's hash) so that a client revalidates with If-None-Match and gets
// 304 while it has not changed.
func (s *Server) openAPIDoc(c *gin.Context) {
	if err := checkQuery(c); err != nil {
		WriteProblem(c, err)
		return
	}
	b, etag := openAPI()
	h := c.Writer.Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", "public, max-age=300, must-revalidate")
	if inm := c.GetHeader("If-None-Match"); inm != "" && etagMatches(inm, etag) {
		c.Writer.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "application/json")
	c.Writer.WriteHeader(http.StatusOK)
	_, _ = c.Writer.Write(b)
}

// etagMatches reports whether an If-None-Match list names etag (weak
// comparison, RFC 9110 13.1.2) or is "*".
func etagMatches(list, etag string) bool {
	for _, t := range strings.Split(list, ",") {
		if t = strings.TrimSpace(t); t == "*" || t == etag || t == "W/"+etag {
			return true
		}
	}
	return false
}
