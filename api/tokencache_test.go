package api_test

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seatledger/seatledger/api"
)

// A token verified once is remembered, but not past its expiry.
func TestVerifiedTokensStillExpire(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	e := newEnv(t, func(c *api.Config) { c.Clock = func() time.Time { return time.Unix(0, now.Load()) } })
	e.createTenant("contoso")
	tok, err := api.NewToken(testSecret, "contoso", "admin", time.Minute, time.Unix(0, now.Load()))
	if err != nil {
		t.Fatal(err)
	}
	path := "/v1/tenants/contoso/users/admin/roles"
	body := map[string]any{"roles": []string{"GlobalAdministrator"}}
	for i := 0; i < 3; i++ { // verified, then answered from the cache
		e.must(http.StatusOK, req{Method: "PUT", Path: path, Token: tok, Body: body})
	}
	now.Add(int64(2 * time.Minute))
	problem(t, e.do(req{Method: "PUT", Path: path, Token: tok, Body: body}), http.StatusUnauthorized, "unauthenticated")
	// A token with a bad signature is never remembered as good.
	problem(t, e.do(req{Method: "PUT", Path: path, Token: tok[:len(tok)-2] + "xx", Body: body}), http.StatusUnauthorized, "unauthenticated")
}
