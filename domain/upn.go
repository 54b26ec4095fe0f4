package domain

import (
	"maps"
	"slices"
	"strings"
	"time"
)

// checkUPN applies Entra ID's rules to a user principal name: name@domain,
// at most 64 characters before the @ and 48 after (113 in all); the name
// of A-Z a-z 0-9 and ' . - _ ! # ^ ~, not starting or ending with a period
// nor holding two in a row; the domain of dot-separated labels of letters,
// digits and hyphens, no label empty or starting or ending with a hyphen.
func checkUPN(field, upn string) error {
	if err := checkText(field, upn, true); err != nil {
		return err
	}
	badUPN := func(why Phrase) error {
		return invalid(field, "userPrincipalName %q is not valid: %s", Echo(upn), why)
	}
	name, domain, ok := strings.Cut(upn, "@")
	switch {
	case !ok:
		return badUPN("it must look like name@domain")
	case strings.Contains(domain, "@"):
		return badUPN("it holds more than one @")
	case name == "" || len(name) > 64:
		return badUPN("the part before the @ must have 1 to 64 characters")
	case domain == "" || len(domain) > 48:
		return badUPN("the domain must have 1 to 48 characters")
	case name[0] == '.' || name[len(name)-1] == '.' || strings.Contains(name, ".."):
		return badUPN("the part before the @ cannot start or end with a period nor hold two in a row")
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !alnum(c) && !strings.ContainsRune("'.-_!#^~", rune(c)) {
			return badUPN("the part before the @ may hold only A-Z a-z 0-9 and ' . - _ ! # ^ ~")
		}
	}
	for _, label := range strings.Split(domain, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return badUPN("each label of the domain needs letters or digits and cannot start or end with a hyphen")
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !alnum(c) && c != '-' {
				return badUPN("the domain may hold only A-Z a-z 0-9, hyphens and periods")
			}
		}
	}
	return nil
}

func alnum(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' }

// upnKey is the form under which user principal names are unique.
func upnKey(upn string) string { return strings.ToLower(upn) }

// UserByUPN returns the user holding a user principal name, without regard
// to case: the active one, else the one deleted last. It answers from an
// index Evolve keeps, built again when a snapshot is read.
func (t *Tenant) UserByUPN(upn string) *User {
	k := upnKey(upn)
	if t.upns != nil {
		return t.Users[t.upns[k]]
	}
	var found *User // a state built without NewTenant: no index
	for _, u := range t.Users {
		if upnKey(u.UserPrincipalName) == k && (found == nil || holdsFirmer(u, found)) {
			found = u
		}
	}
	return found
}

// indexUPN records that u holds its user principal name, unless another
// user holds it more firmly (active, or deleted later).
func (t *Tenant) indexUPN(u *User) {
	if t.upns == nil {
		t.upns = map[string]string{}
	}
	k := upnKey(u.UserPrincipalName)
	if cur := t.Users[t.upns[k]]; cur != nil && cur != u && holdsFirmer(cur, u) {
		return
	}
	t.upns[k] = u.ID
}

func holdsFirmer(a, b *User) bool {
	if a.Deleted != b.Deleted {
		return !a.Deleted
	}
	return a.DeletedAt.After(b.DeletedAt)
}

func (t *Tenant) indexUPNs() {
	t.upns = make(map[string]string, len(t.Users))
	for _, id := range slices.Sorted(maps.Keys(t.Users)) {
		t.indexUPN(t.Users[id])
	}
}

// upnTaken refuses a user principal name another user holds: an active user,
// or a deleted one that can still be restored (Entra keeps a deleted user's
// name until it is purged).
func (dec *decision) upnTaken(upn string) error {
	u := dec.t.UserByUPN(upn)
	if u == nil || u.Deleted && dec.now.Sub(u.DeletedAt) > dec.d.Policy.RestoreWindow {
		return nil
	}
	if u.Deleted {
		return Errorf(CodeAlreadyExists, "userPrincipalName", "userPrincipalName %q is already held by deleted user (restorable until %s) %s; choose another",
			upn, u.DeletedAt.Add(dec.d.Policy.RestoreWindow).Format(time.DateOnly), u.ID)
	}
	return Errorf(CodeAlreadyExists, "userPrincipalName", "userPrincipalName %q is already held by user %s; choose another", upn, u.ID)
}
