package queries

import (
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/internal/redistest"
	"github.com/seatledger/seatledger/readmodel"
)

// TestFindUsersMatchesAModel: every page of the users list, in both
// orders, filtered, searched and from crafted cursors (bytes around the
// indexes' order tags included), is the model's: the users passing the
// filters and the search, sorted by their member of the order, after the
// cursor.
func TestFindUsersMatchesAModel(t *testing.T) {
	if testing.Short() {
		t.Skip("pages a tenant many ways")
	}
	f := newFixtureOn(t, redistest.Single, Config{})
	const tenant = "model"
	f.do(tenant, &domain.CreateTenant{CommandMeta: domain.CommandMeta{Actor: domain.Actor{Operator: true}}, Name: "T",
		GlobalAdmin: domain.NewUser{ID: "admin", UserPrincipalName: "admin@x.example", DisplayName: "Admin", UsageLocation: "US"}})
	f.do(tenant, &domain.PurchaseSubscription{SubscriptionID: "s1", SkuID: "SPE_E3", Quantity: 100})
	type mu struct {
		id, upn, name, typ string
		deleted, licensed  bool
	}
	users := map[string]*mu{"admin": {id: "admin", upn: "admin@x.example", name: "Admin", typ: "Member"}}
	rnd := rand.New(rand.NewPCG(7, 22))
	parts := []string{"1", "2", "3", "ab", "Ab", "ä", "b", "", "z", "Élo", "élo", "\u0301"}
	word := func() string {
		var b strings.Builder
		for range 1 + rnd.IntN(3) {
			b.WriteString(parts[rnd.IntN(len(parts))])
		}
		return b.String()
	}
	var version uint64
	for i := range 40 {
		id := fmt.Sprintf("u%02d", i)
		upnLocal := strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, readmodel.Fold(word()))
		if upnLocal == "" {
			upnLocal = "x"
		}
		upn := upnLocal + id + "@x.example"
		name := word()
		if strings.TrimSpace(name) == "" || i%9 == 0 {
			name = "\u0301" // folds to nothing
		}
		typ := "Member"
		if i%3 == 0 {
			typ = "Guest"
		}
		r := f.do(tenant, &domain.AddUser{User: domain.NewUser{ID: id, UserPrincipalName: upn, DisplayName: name, UserType: typ, UsageLocation: "US"}})
		version = r.Version
		u := &mu{id: id, upn: upn, name: name, typ: typ}
		if u.name == "" {
			u.name = upn
		}
		users[id] = u
		if i%2 == 0 {
			version = f.do(tenant, &domain.AssignLicenses{SkuID: "SPE_E3", Users: []string{id}}).Version
			u.licensed = true
		}
		if i%5 == 0 {
			u.name = word() + " renamed"
			version = f.do(tenant, &domain.UpdateUser{UserID: id, DisplayName: u.name}).Version
		}
		if i%7 == 3 {
			version = f.do(tenant, &domain.DeleteUser{UserID: id}).Version
			u.deleted, u.licensed = true, false
		}
	}
	ctx := context.Background()
	member := func(u *mu, order string) string {
		n, p, _ := readmodel.IndexedUser{ID: u.id, DisplayName: u.name, UserPrincipalName: u.upn}.Members()
		if order == readmodel.OrderUPN {
			return p
		}
		return n
	}
	want := func(uf UserFilter, order, after string) []string {
		var ms []string
		for _, u := range users {
			if uf.UserType != "" && u.typ != uf.UserType ||
				uf.Status == "active" && u.deleted || uf.Status == "deleted" && !u.deleted ||
				uf.Licensed == "true" && !u.licensed || uf.Licensed == "false" && u.licensed ||
				uf.SkuID != "" && !u.licensed {
				continue
			}
			if s := readmodel.Fold(strings.TrimSpace(uf.Search)); s != "" &&
				!strings.HasPrefix(readmodel.Fold(u.name), s) && !strings.HasPrefix(readmodel.Fold(u.upn), s) {
				continue
			}
			if m := member(u, order); m > after {
				ms = append(ms, m)
			}
		}
		slices.Sort(ms)
		ids := make([]string, len(ms))
		for i, m := range ms {
			_, ids[i], _, _ = readmodel.SplitMember(m)
		}
		return ids
	}
	filters := []UserFilter{{Status: "active"}, {UserType: "Guest"}, {Licensed: "true"}, {Licensed: "false", UserType: "Member"},
		{SkuID: "SPE_E3", Status: "active"}, {Status: "deleted"}}
	for _, s := range []string{"a", "1", "2", "ab", "élo", "z", "b", "3a", "x"} {
		filters = append(filters, UserFilter{Search: s}, UserFilter{Search: s, Status: "active"}, UserFilter{Search: s, Licensed: "false"})
	}
	cursors := []string{"", "\x00", "\x01", "0", "1", "1zzz", "2", "2a", "3", "\xff", "\xff\xff", "a\x00", "élo", "z\x00u01\x00"}
	for _, base := range filters {
		for _, order := range []string{readmodel.OrderDisplayName, readmodel.OrderUPN} {
			uf := base
			uf.OrderBy = order
			letter := "n"
			if order == readmodel.OrderUPN {
				letter = "p"
			}
			for _, after := range cursors {
				for _, limit := range []int{1, 3, 100} {
					var got []string
					cur := ""
					if after != "" {
						cur = base64.RawURLEncoding.EncodeToString([]byte(letter + after))
					}
					for pages := 0; ; pages++ {
						if pages > 200 {
							t.Fatalf("%+v after %q: no end", uf, after)
						}
						a, err := f.svc.FindUsers(ctx, tenant, uf, Options{MinVersion: version, Limit: limit, Cursor: cur})
						if err != nil {
							t.Fatalf("%+v after %q: %v", uf, after, err)
						}
						for _, u := range a.Value {
							got = append(got, u.ID)
						}
						if a.NextCursor == "" {
							break
						}
						cur = a.NextCursor
					}
					if w := want(uf, order, after); !slices.Equal(got, w) {
						t.Errorf("%+v after %q limit %d:\n got %q\nwant %q", uf, after, limit, got, w)
					}
				}
			}
		}
	}
}
