package queries

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// TestHardening18_OneListShape: every paged answer says "there is more"
// the same way: X-Next-Cursor and a Link rel="next" that, followed, gives
// the next page. A list is a bare JSON array; a detail with a paged list in
// it (licenses/{sku}: users, groups/{g}: members) keeps its nextCursor
// member and carries the same headers.
func TestHardening18_OneListShape(t *testing.T) {
	f := newFixture(t, Config{})
	head := f.seed("contoso")
	mv := "minVersion=" + strconv.FormatUint(head, 10)
	for _, path := range []string{
		"/v1/tenants/contoso/users?limit=5&" + mv,
		"/v1/tenants/contoso/licenses?limit=1&" + mv,
		"/v1/tenants/contoso/subscriptions?limit=2&" + mv,
		"/v1/tenants/contoso/licenses/SPE_E3?limit=3&" + mv,
		"/v1/tenants/contoso/groups/g1?limit=1&" + mv,
	} {
		a := f.get(path)
		if a.code != 200 {
			t.Fatalf("GET %s: %d %s", path, a.code, a.body)
		}
		next := a.hdr.Get("X-Next-Cursor")
		if next == "" {
			t.Errorf("GET %s: no X-Next-Cursor", path)
			continue
		}
		link := a.hdr.Get("Link")
		target, ok := strings.CutSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`)
		if !ok {
			t.Errorf("GET %s: Link %q", path, link)
			continue
		}
		u, err := url.Parse(target)
		if err != nil || u.Query().Get("cursor") != next {
			t.Errorf("GET %s: Link %q does not carry cursor %s", path, link, next)
		}
		if bytes.HasPrefix(a.body, []byte("{")) {
			var detail struct {
				NextCursor string `json:"nextCursor"`
			}
			if err := json.Unmarshal(a.body, &detail); err != nil || detail.NextCursor != next {
				t.Errorf("GET %s: body nextCursor %q, header %q", path, detail.NextCursor, next)
			}
		} else if !bytes.HasPrefix(a.body, []byte("[")) {
			t.Errorf("GET %s: a list that is not a JSON array: %.100s", path, a.body)
		}
		if b := f.get(target); b.code != 200 || bytes.Equal(b.body, a.body) {
			t.Errorf("following Link %s: %d, same page %v", target, b.code, bytes.Equal(b.body, a.body))
		}
	}
}
