package tenantstream_test

import (
	"testing"

	"github.com/seatledger/seatledger/tenantstream"
)

func TestTenantIDInvertsName(t *testing.T) {
	for _, id := range []string{"contoso", "t1", "a-b", ""} {
		got, ok := tenantstream.TenantID(tenantstream.Name(id))
		if !ok || got != id {
			t.Errorf("TenantID(Name(%q)) = %q, %v", id, got, ok)
		}
	}
	for _, s := range []string{"$all", "tenant", "lease-x", "Tenant-x"} {
		if got, ok := tenantstream.TenantID(s); ok {
			t.Errorf("TenantID(%q) = %q, true; want not a tenant stream", s, got)
		}
	}
}
