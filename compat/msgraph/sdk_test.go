package msgraph_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	abs "github.com/microsoft/kiota-abstractions-go"
	msgraphsdk "github.com/microsoftgraph/msgraph-sdk-go"
	msgraphcore "github.com/microsoftgraph/msgraph-sdk-go-core"
	"github.com/microsoftgraph/msgraph-sdk-go/groups"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"
	"github.com/microsoftgraph/msgraph-sdk-go/users"
)

var (
	skuSPB        = uuid.MustParse("cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46")
	skuExchange2  = uuid.MustParse("19ec0d23-8335-4cbd-94ac-6050e30712fa")
	skuAudioConf  = uuid.MustParse("0c266dff-15dd-4b49-8397-2bb16070ed52")
	planSway      = uuid.MustParse("a23b959c-7ce8-4e57-9140-b90eb88a9e97")
	skuNotOwned   = uuid.MustParse("00000000-0000-0000-0000-000000000001")
	manyUsers     = 12
	tenantID      = "contoso"
	exchangePlan1 = "9aaf7827-d63c-4b61-89c3-182f06f82e5c"
)

// bearer is the SDK's authentication: a seatledger token as the bearer.
type bearer string

func (b bearer) AuthenticateRequest(_ context.Context, r *abs.RequestInformation, _ map[string]any) error {
	r.Headers.Add("Authorization", "Bearer "+string(b))
	return nil
}

// client is the official SDK's client with its default middleware
// (compression, retry, redirect, ...), its base URL pointed at seatledger.
func client(t *testing.T, s *seatledger, tok string) (*msgraphsdk.GraphServiceClient, *msgraphsdk.GraphRequestAdapter) {
	t.Helper()
	adapter, err := msgraphsdk.NewGraphRequestAdapter(bearer(tok))
	if err != nil {
		t.Fatal(err)
	}
	adapter.SetBaseUrl(s.base + "/v1.0")
	return msgraphsdk.NewGraphServiceClient(adapter), adapter
}

func assign(add []uuid.UUID, disabled []uuid.UUID, remove ...uuid.UUID) *users.ItemAssignLicensePostRequestBody {
	body := users.NewItemAssignLicensePostRequestBody()
	body.SetAddLicenses(licenses(add, disabled))
	body.SetRemoveLicenses(append([]uuid.UUID{}, remove...))
	return body
}

func licenses(add []uuid.UUID, disabled []uuid.UUID) []models.AssignedLicenseable {
	out := []models.AssignedLicenseable{}
	for _, sku := range add {
		l := models.NewAssignedLicense()
		l.SetSkuId(ptr(sku))
		l.SetDisabledPlans(append([]uuid.UUID{}, disabled...))
		out = append(out, l)
	}
	return out
}

func skus(ls []models.AssignedLicenseable) []uuid.UUID {
	var out []uuid.UUID
	for _, l := range ls {
		out = append(out, *l.GetSkuId())
	}
	return out
}

// odataError checks that err is the SDK's typed ODataError with status,
// code and a message containing want.
func odataError(t *testing.T, err error, status int, code, want string) {
	t.Helper()
	var oe *odataerrors.ODataError
	if !errors.As(err, &oe) {
		t.Fatalf("want an ODataError %d %s, got %T: %v", status, code, err, err)
	}
	main := oe.GetErrorEscaped()
	if main == nil {
		t.Fatalf("ODataError without error: %v", oe)
	}
	if oe.ResponseStatusCode != status || str(main.GetCode()) != code || !strings.Contains(str(main.GetMessage()), want) {
		t.Fatalf("ODataError %d %s %q, want %d %s containing %q", oe.ResponseStatusCode, str(main.GetCode()), str(main.GetMessage()), status, code, want)
	}
	if !strings.Contains(oe.Error(), str(main.GetMessage())) {
		t.Fatalf("Error() %q lacks the message", oe.Error())
	}
	if inner := main.GetInnerError(); inner == nil || str(inner.GetRequestId()) == "<nil>" || inner.GetDate() == nil {
		t.Fatalf("innerError %v", inner)
	}
}

func userIDs(us []models.Userable) []string {
	var out []string
	for _, u := range us {
		out = append(out, str(u.GetId()))
	}
	return out
}

// TestGraphSDK drives seatledger with the official Microsoft Graph Go SDK.
func TestGraphSDK(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts seatledger serve (multi-process)")
	}
	ctx := context.Background()
	s := startSeatledger(t)

	// A tenant, set up through seatledger's own API.
	s.v1(t, operatorToken, "POST", "/v1/tenants", map[string]any{"id": tenantID, "name": "Contoso",
		"globalAdmin": map[string]any{"id": "admin", "userPrincipalName": "admin@contoso.example", "displayName": "Admin", "usageLocation": "US"}})
	admin := s.token(t, tenantID, "admin")
	for _, u := range []struct{ id, name, loc string }{{"alice", "Alice", "US"}, {"bob", "Bob", "US"}, {"carol", "Carol", "FR"}, {"dave", "Dave", ""}, {"erin", "Erin", "US"}} {
		s.v1(t, admin, "POST", "/v1/tenants/contoso/users", map[string]any{"id": u.id, "userPrincipalName": u.id + "@contoso.example", "displayName": u.name, "usageLocation": u.loc})
	}
	for i := range manyUsers {
		id := "user" + string(rune('a'+i))
		s.v1(t, admin, "POST", "/v1/tenants/contoso/users", map[string]any{"id": id, "userPrincipalName": id + "@contoso.example", "displayName": "Member " + id, "usageLocation": "DE"})
	}
	s.v1(t, admin, "POST", "/v1/tenants/contoso/subscriptions", map[string]any{"id": "s1", "skuId": "SPB", "quantity": 3})
	s.v1(t, admin, "POST", "/v1/tenants/contoso/subscriptions", map[string]any{"id": "s2", "skuId": "EXCHANGEENTERPRISE", "quantity": 2})
	s.v1(t, admin, "POST", "/v1/tenants/contoso/subscriptions", map[string]any{"id": "s3", "skuId": "MCOMEETADV", "quantity": 2})
	s.v1(t, admin, "POST", "/v1/tenants/contoso/groups", map[string]any{"id": "g1", "displayName": "Sales"})
	for _, m := range []string{"dave", "erin"} {
		s.v1(t, admin, "PUT", "/v1/tenants/contoso/groups/g1/members/"+m, nil)
	}

	gc, adapter := client(t, s, admin)

	t.Run("assign to a user by id and by userPrincipalName", func(t *testing.T) {
		u, err := gc.Users().ByUserId("alice").AssignLicense().Post(ctx, assign([]uuid.UUID{skuSPB}, []uuid.UUID{planSway}), nil)
		if err != nil {
			t.Fatal(err)
		}
		if str(u.GetId()) != "alice" || !slices.Equal(skus(u.GetAssignedLicenses()), []uuid.UUID{skuSPB}) ||
			!slices.Equal(u.GetAssignedLicenses()[0].GetDisabledPlans(), []uuid.UUID{planSway}) {
			t.Fatalf("assignLicense answered %v %v", str(u.GetId()), skus(u.GetAssignedLicenses()))
		}
		st := u.GetLicenseAssignmentStates()
		if len(st) != 1 || st[0].GetAssignedByGroup() != nil || str(st[0].GetState()) != "Active" || str(st[0].GetError()) != "None" || st[0].GetLastUpdatedDateTime() == nil {
			t.Fatalf("licenseAssignmentStates %+v", st)
		}
		if len(u.GetAssignedPlans()) == 0 || u.GetAccountEnabled() == nil || !*u.GetAccountEnabled() || str(u.GetUsageLocation()) != "US" {
			t.Fatalf("user %v", u)
		}
		u, err = gc.Users().ByUserId("bob@contoso.example").AssignLicense().Post(ctx, assign([]uuid.UUID{skuSPB}, nil), nil)
		if err != nil {
			t.Fatal(err)
		}
		if str(u.GetId()) != "bob" || len(u.GetAssignedLicenses()) != 1 {
			t.Fatalf("by UPN: %v", str(u.GetId()))
		}
		// Read-your-writes: the next read sees it.
		got, err := gc.Users().ByUserId("bob").Get(ctx, nil)
		if err != nil || len(got.GetAssignedLicenses()) != 1 {
			t.Fatalf("read after write: %v %v", got, err)
		}
	})

	t.Run("assign to a group", func(t *testing.T) {
		body := groups.NewItemAssignLicensePostRequestBody()
		body.SetAddLicenses(licenses([]uuid.UUID{skuSPB}, nil))
		body.SetRemoveLicenses([]uuid.UUID{})
		g, err := gc.Groups().ByGroupId("g1").AssignLicense().Post(ctx, body, nil)
		if err != nil {
			t.Fatal(err)
		}
		// erin takes the last license; dave has no usage location.
		if str(g.GetId()) != "g1" || !slices.Equal(skus(g.GetAssignedLicenses()), []uuid.UUID{skuSPB}) || g.GetHasMembersWithLicenseErrors() == nil || !*g.GetHasMembersWithLicenseErrors() {
			t.Fatalf("group %v %v %v", str(g.GetId()), skus(g.GetAssignedLicenses()), g.GetHasMembersWithLicenseErrors())
		}
		g, err = gc.Groups().ByGroupId("g1").Get(ctx, nil)
		if err != nil || str(g.GetLicenseProcessingState().GetState()) != "ProcessingComplete" {
			t.Fatalf("group read %v", err)
		}
		members, err := gc.Groups().ByGroupId("g1").MembersWithLicenseErrors().Get(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if v := members.GetValue(); len(v) != 1 || str(v[0].GetId()) != "dave" {
			t.Fatalf("membersWithLicenseErrors %v", v)
		} else if _, isUser := v[0].(models.Userable); !isUser {
			t.Fatalf("member is a %T, want a user", v[0])
		}
		dave, err := gc.Users().ByUserId("dave").Get(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		st := dave.GetLicenseAssignmentStates()
		if len(st) != 1 || str(st[0].GetAssignedByGroup()) != "g1" || str(st[0].GetState()) != "Error" || str(st[0].GetError()) != "ProhibitedInUsageLocationViolation" || len(dave.GetAssignedLicenses()) != 0 {
			t.Fatalf("dave's states %v %v %v", str(st[0].GetAssignedByGroup()), str(st[0].GetState()), str(st[0].GetError()))
		}
		if u, err := gc.Users().ByUserId("dave").ReprocessLicenseAssignment().Post(ctx, nil); err != nil || str(u.GetId()) != "dave" {
			t.Fatalf("reprocessLicenseAssignment %v", err)
		}
	})

	t.Run("list and filter users", func(t *testing.T) {
		list := func(q users.UsersRequestBuilderGetQueryParameters, eventual bool) models.UserCollectionResponseable {
			t.Helper()
			cfg := &users.UsersRequestBuilderGetRequestConfiguration{QueryParameters: &q}
			if eventual {
				cfg.Headers = abs.NewRequestHeaders()
				cfg.Headers.Add("ConsistencyLevel", "eventual")
			}
			res, err := gc.Users().Get(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		res := list(users.UsersRequestBuilderGetQueryParameters{Filter: ptr("assignedLicenses/any(x:x/skuId eq " + skuSPB.String() + ")"), Count: ptr(true)}, true)
		if ids := userIDs(res.GetValue()); !slices.Equal(ids, []string{"alice", "bob", "erin"}) || res.GetOdataCount() == nil || *res.GetOdataCount() != 3 {
			t.Fatalf("any(skuId): %v %v", ids, res.GetOdataCount())
		}
		res = list(users.UsersRequestBuilderGetQueryParameters{Filter: ptr("assignedLicenses/$count eq 0 and usageLocation eq 'FR'")}, false)
		if ids := userIDs(res.GetValue()); !slices.Equal(ids, []string{"carol"}) {
			t.Fatalf("$count eq 0: %v", ids)
		}
		res = list(users.UsersRequestBuilderGetQueryParameters{Filter: ptr("startswith(displayName,'Member ')"), Select: []string{"id", "displayName"}}, false)
		if n := len(res.GetValue()); n != manyUsers {
			t.Fatalf("startswith: %d users", n)
		}
		if u := res.GetValue()[0]; u.GetUserPrincipalName() != nil || u.GetDisplayName() == nil {
			t.Fatalf("$select gave userPrincipalName %v", str(u.GetUserPrincipalName()))
		}
		res = list(users.UsersRequestBuilderGetQueryParameters{Filter: ptr("userPrincipalName eq 'carol@contoso.example' or id eq 'erin'")}, false)
		if ids := userIDs(res.GetValue()); !slices.Equal(ids, []string{"carol", "erin"}) {
			t.Fatalf("eq: %v", ids)
		}
	})

	t.Run("page with nextLink", func(t *testing.T) {
		res, err := gc.Users().Get(ctx, &users.UsersRequestBuilderGetRequestConfiguration{QueryParameters: &users.UsersRequestBuilderGetQueryParameters{Top: ptr(int32(4))}})
		if err != nil {
			t.Fatal(err)
		}
		if res.GetOdataNextLink() == nil || !strings.HasPrefix(*res.GetOdataNextLink(), s.base+"/v1.0/users?") {
			t.Fatalf("nextLink %v", str(res.GetOdataNextLink()))
		}
		it, err := msgraphcore.NewPageIterator[models.Userable](res, adapter, models.CreateUserCollectionResponseFromDiscriminatorValue)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		if err := it.Iterate(ctx, func(u models.Userable) bool { ids = append(ids, str(u.GetId())); return true }); err != nil {
			t.Fatal(err)
		}
		if len(ids) != 6+manyUsers || !slices.IsSorted(ids) || slices.Compact(slices.Clone(ids))[len(ids)-1] == "" {
			t.Fatalf("paged %d users: %v", len(ids), ids)
		}
	})

	t.Run("subscribedSkus and licenseDetails", func(t *testing.T) {
		res, err := gc.SubscribedSkus().Get(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		var spb models.SubscribedSkuable
		for _, s := range res.GetValue() {
			if *s.GetSkuId() == skuSPB {
				spb = s
			}
		}
		if len(res.GetValue()) != 3 || spb == nil {
			t.Fatalf("%d subscribedSkus", len(res.GetValue()))
		}
		pre := spb.GetPrepaidUnits()
		if str(spb.GetSkuPartNumber()) != "SPB" || *spb.GetConsumedUnits() != 3 || *pre.GetEnabled() != 3 || *pre.GetSuspended() != 0 ||
			*pre.GetWarning() != 0 || *pre.GetLockedOut() != 0 || str(spb.GetCapabilityStatus()) != "Enabled" || str(spb.GetAppliesTo()) != "User" ||
			!slices.Equal(spb.GetSubscriptionIds(), []string{"s1"}) || len(spb.GetServicePlans()) == 0 {
			t.Fatalf("SPB %v", spb)
		}
		one, err := gc.SubscribedSkus().BySubscribedSkuId(tenantID+"_"+skuSPB.String()).Get(ctx, nil)
		if err != nil || *one.GetSkuId() != skuSPB {
			t.Fatalf("subscribedSku by id: %v", err)
		}
		details, err := gc.Users().ByUserId("alice").LicenseDetails().Get(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		v := details.GetValue()
		if len(v) != 1 || *v[0].GetSkuId() != skuSPB || str(v[0].GetSkuPartNumber()) != "SPB" {
			t.Fatalf("licenseDetails %v", v)
		}
		status := map[string]string{}
		for _, p := range v[0].GetServicePlans() {
			status[p.GetServicePlanId().String()] = str(p.GetProvisioningStatus())
		}
		if status[planSway.String()] != "Disabled" || status[exchangePlan1] != "Success" {
			t.Fatalf("provisioningStatus %v", status)
		}
	})

	t.Run("typed ODataErrors for license failures", func(t *testing.T) {
		post := func(user string, body *users.ItemAssignLicensePostRequestBody) error {
			_, err := gc.Users().ByUserId(user).AssignLicense().Post(ctx, body, nil)
			return err
		}
		odataError(t, post("carol", assign([]uuid.UUID{skuSPB}, nil)), http.StatusBadRequest, "Request_BadRequest",
			"Subscription with SKU "+skuSPB.String()+" does not have any available licenses.")
		odataError(t, post("dave", assign([]uuid.UUID{skuExchange2}, nil)), http.StatusBadRequest, "Request_BadRequest",
			"License assignment cannot be done for user with invalid usage location.")
		odataError(t, post("alice", assign([]uuid.UUID{skuExchange2}, nil)), http.StatusBadRequest, "Request_BadRequest", "mutually exclusive")
		odataError(t, post("carol", assign([]uuid.UUID{skuAudioConf}, nil)), http.StatusBadRequest, "Request_BadRequest", "dependency")
		odataError(t, post("carol", assign([]uuid.UUID{skuNotOwned}, nil)), http.StatusBadRequest, "Request_BadRequest", "does not correspond to a valid company License")
		odataError(t, post("erin", assign(nil, nil, skuSPB)), http.StatusBadRequest, "Request_BadRequest", "inherited from a group")
		odataError(t, post("nobody", assign([]uuid.UUID{skuSPB}, nil)), http.StatusNotFound, "Request_ResourceNotFound", "nobody")
		_, err := gc.Users().ByUserId("nobody").Get(ctx, nil)
		odataError(t, err, http.StatusNotFound, "Request_ResourceNotFound", "nobody")
		_, err = gc.Users().Get(ctx, &users.UsersRequestBuilderGetRequestConfiguration{QueryParameters: &users.UsersRequestBuilderGetQueryParameters{Orderby: []string{"displayName"}}})
		odataError(t, err, http.StatusBadRequest, "Request_UnsupportedQuery", "$orderby")
		_, err = gc.Users().Get(ctx, &users.UsersRequestBuilderGetRequestConfiguration{QueryParameters: &users.UsersRequestBuilderGetQueryParameters{Filter: ptr("endswith(mail,'@contoso.example')")}})
		odataError(t, err, http.StatusBadRequest, "Request_UnsupportedQuery", "endswith")
		plain, _ := client(t, s, s.token(t, tenantID, "carol"))
		_, err = plain.Users().ByUserId("alice").AssignLicense().Post(ctx, assign([]uuid.UUID{skuSPB}, nil), nil)
		odataError(t, err, http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges")
	})

	t.Run("remove licenses", func(t *testing.T) {
		u, err := gc.Users().ByUserId("alice").AssignLicense().Post(ctx, assign(nil, nil, skuSPB), nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(u.GetAssignedLicenses()) != 0 || len(u.GetLicenseAssignmentStates()) != 0 {
			t.Fatalf("after remove: %v", skus(u.GetAssignedLicenses()))
		}
		// The freed license is carol's to take (dave, in error through
		// the group, still has no usage location).
		if u, err = gc.Users().ByUserId("carol").AssignLicense().Post(ctx, assign([]uuid.UUID{skuSPB}, nil), nil); err != nil || len(u.GetAssignedLicenses()) != 1 {
			t.Fatalf("carol after the removal: %v", err)
		}
		body := groups.NewItemAssignLicensePostRequestBody()
		body.SetAddLicenses([]models.AssignedLicenseable{})
		body.SetRemoveLicenses([]uuid.UUID{skuSPB})
		g, err := gc.Groups().ByGroupId("g1").AssignLicense().Post(ctx, body, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(g.GetAssignedLicenses()) != 0 || *g.GetHasMembersWithLicenseErrors() {
			t.Fatalf("group after remove: %v", skus(g.GetAssignedLicenses()))
		}
	})

	// The SDK compressed every body it sent, and seatledger read them.
	n, of := s.gzipped()
	if of == 0 || n != of {
		t.Fatalf("%d of %d request bodies were gzip-encoded", n, of)
	}
	t.Logf("the SDK sent %d request bodies, all gzip-encoded", of)
}
