package history

import (
	"testing"

	"github.com/seatledger/seatledger/domain"
)

// TestHardening02_AuditActorFilterTellsTheOperatorFromAUser: a tenant user
// whose id is "operator" (allowed before the domain reserved the name) is
// not the operator for ?actor=.
func TestHardening02_AuditActorFilterTellsTheOperatorFromAUser(t *testing.T) {
	op, user := Record{Actor: domain.Actor{Operator: true}}, Record{Actor: domain.Actor{UserID: "operator"}}
	f := Filter{Actor: "operator"}
	if !f.matches(op) || f.matches(user) {
		t.Fatalf("actor=operator matches the operator %v, the user operator %v", f.matches(op), f.matches(user))
	}
	if g := (Filter{Actor: user.Actor.String()}); !g.matches(user) || g.matches(op) {
		t.Fatalf("actor=%s does not single out the user", user.Actor.String())
	}
}
