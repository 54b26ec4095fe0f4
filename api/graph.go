package api

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/seatledger/seatledger/commands"
	"github.com/seatledger/seatledger/domain"
)

// The Microsoft Graph surface: the licensing calls of Graph v1.0 at /v1.0,
// the tenant taken from the token's tid, so a Graph client's base URL is
// the only thing that changes (docs/GRAPH.md).
//
// Writes run the same commands as /v1. Reads are answered from the command
// side's state of the tenant (commands.Handler.View, the state commands are
// decided on, at the stream's head): a read after a write, by any token,
// sees that write, with no minVersion to send.

// graphTenant takes the tenant from the token's tid. The operator token
// names no tenant and is refused here.
func (s *Server) graphTenant(c *gin.Context) {
	if ActorOf(c).Operator {
		WriteProblem(c, graphErr(http.StatusForbidden, graphDenied,
			"Insufficient privileges to complete the operation. /v1.0 takes a user's token: its tid claim names the tenant; the operator token names none."))
		return
	}
	st := stateFor(c)
	st.tenant = st.tokenTID
	c.Next()
}

// graphReaders are the roles that may read through /v1.0 (as on /v1).
var graphReaders = []domain.Role{domain.RoleGlobalAdmin, domain.RoleLicenseAdmin, domain.RoleUserAdmin, domain.RoleBillingAdmin}

// graphRead runs fn on the tenant's current state for an admin of the
// tenant and answers what it returns with status 200. fn must copy what it
// keeps: the state is only lent.
func (s *Server) graphRead(c *gin.Context, fn func(t *domain.Tenant) (any, error)) {
	s.graphAnswer(c, http.StatusOK, fn)
}

func (s *Server) graphAnswer(c *gin.Context, status int, fn func(t *domain.Tenant) (any, error)) {
	if out, ok := s.graphView(c, fn); ok {
		writeJSON(c, status, "application/json", out)
	}
}

// graphView runs fn as graphRead does and returns what it returned; on an
// error it answers it and returns false.
func (s *Server) graphView(c *gin.Context, fn func(t *domain.Tenant) (any, error)) (any, bool) {
	tenant, a := TenantOf(c), ActorOf(c)
	var (
		out any
		err error
	)
	viewErr := s.cfg.Commands.View(c.Request.Context(), tenant, func(t *domain.Tenant) error {
		if err = graphReader(tenant, t, a); err == nil {
			out, err = fn(t)
		}
		return nil
	})
	if viewErr != nil {
		err = viewErr
	}
	if err != nil {
		WriteProblem(c, err)
		return nil, false
	}
	return out, true
}

// graphReader refuses an actor who may not read the tenant t through
// /v1.0: an answer that says whether a user, group or product exists is
// for the tenant's admins only.
func graphReader(tenant string, t *domain.Tenant, a domain.Actor) error {
	switch u := t.Users[a.UserID]; {
	case !t.Exists():
		return graphNotFoundErr(tenant)
	case u == nil || u.Deleted || !u.HasRole(graphReaders...):
		return graphErr(http.StatusForbidden, graphDenied, "Insufficient privileges to complete the operation.")
	}
	return nil
}

// graphBase is the absolute URL of /v1.0 as the client reached it.
func graphBase(c *gin.Context) string {
	scheme := "http"
	if c.Request.TLS != nil || strings.EqualFold(c.GetHeader("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return scheme + "://" + c.Request.Host + graphPrefix
}

// graphList is a page of a collection.
func graphList(c *gin.Context, entitySet string, value []map[string]any, next string, count *int) map[string]any {
	out := map[string]any{"@odata.context": graphBase(c) + "/$metadata#" + entitySet, "value": value}
	if value == nil {
		out["value"] = []map[string]any{}
	}
	if next != "" {
		out["@odata.nextLink"] = nextLink(c, next)
	}
	if count != nil {
		out["@odata.count"] = *count
	}
	return out
}

// ---- users

// graphUserProps are the user properties served (and $select may name).
var graphUserProps = []string{"id", "userPrincipalName", "displayName", "userType", "usageLocation", "accountEnabled",
	"assignedLicenses", "licenseAssignmentStates", "assignedPlans"}

// findUser resolves /users/{id|userPrincipalName} to an active user.
func findUser(t *domain.Tenant, idOrUPN string) (*domain.User, error) {
	u := t.Users[idOrUPN]
	if u == nil || u.Deleted {
		u = t.UserByUPN(idOrUPN)
	}
	if u == nil || u.Deleted {
		return nil, graphNotFoundErr(idOrUPN)
	}
	return u, nil
}

// activeLicenses lists a user's licenses that give the product (from at
// least one source without an error), by skuId.
func (s *Server) activeLicenses(t *domain.Tenant, u *domain.User) []domain.LicenseView {
	var out []domain.LicenseView
	for _, sku := range graphKeys(u.Licenses) {
		v := domain.ViewLicense(s.cfg.Decider.Catalog, t, u.Licenses[sku])
		if v.State != "Error" {
			out = append(out, v)
		}
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}

func (s *Server) graphUserRow(t *domain.Tenant, u *domain.User) *userRow {
	r := &userRow{id: u.ID, upn: u.UserPrincipalName, displayName: u.DisplayName, userType: u.UserType,
		usageLocation: u.UsageLocation, accountEnabled: !u.Deleted}
	for _, l := range u.Licenses {
		if l.Consumes() {
			r.skus = append(r.skus, l.SkuID)
		}
	}
	return r
}

// graphUser is a user in Graph's shape.
func (s *Server) graphUser(t *domain.Tenant, u *domain.User) map[string]any {
	cat := s.cfg.Decider.Catalog
	changed := t.LastOccurredAt.UTC().Format(time.RFC3339)
	assigned := []map[string]any{}
	plans := []map[string]any{}
	for _, v := range s.activeLicenses(t, u) {
		assigned = append(assigned, map[string]any{"skuId": v.SkuID, "disabledPlans": nonNil(v.DisabledPlans)})
		prod, _ := cat.Product(t, v.SkuID)
		if prod == nil {
			continue
		}
		for _, sp := range prod.ServicePlans {
			if !slices.Contains(v.EnabledPlans, sp.ID) {
				continue
			}
			service := sp.Workload
			if service == "" {
				service = sp.Name
			}
			plans = append(plans, map[string]any{"assignedDateTime": changed, "capabilityStatus": "Enabled",
				"service": service, "servicePlanId": sp.ID})
		}
	}
	states := []map[string]any{}
	for _, sku := range graphKeys(u.Licenses) {
		l := u.Licenses[sku]
		for _, name := range l.SourceNames() {
			src := l.Sources[name]
			var byGroup any
			if g, ok := domain.GroupOfSource(name); ok {
				byGroup = g
			}
			state, errName := "Active", "None"
			if !src.Active() {
				state, errName = "Error", graphLicenseError(src.Error)
			}
			states = append(states, map[string]any{"skuId": sku, "disabledPlans": nonNil(src.DisabledPlans),
				"assignedByGroup": byGroup, "state": state, "error": errName, "lastUpdatedDateTime": changed})
		}
	}
	var usage any
	if u.UsageLocation != "" {
		usage = u.UsageLocation
	}
	return map[string]any{
		"id": u.ID, "userPrincipalName": u.UserPrincipalName, "displayName": u.DisplayName, "userType": u.UserType,
		"usageLocation": usage, "accountEnabled": !u.Deleted, "assignedLicenses": assigned,
		"licenseAssignmentStates": states, "assignedPlans": plans,
	}
}

// graphLicenseError names a license error state with Graph's values.
func graphLicenseError(e string) string {
	switch e {
	case domain.GroupErrCountViolation, domain.GroupErrMutuallyExclusive, domain.GroupErrDependency,
		"ProhibitedInUsageLocationViolation", "UniquenessViolation":
		return e
	case domain.GroupErrUsageLocation:
		return "ProhibitedInUsageLocationViolation"
	}
	return "Other"
}

func (s *Server) graphListUsers(c *gin.Context) {
	q, err := parseOData(c, "microsoft.graph.user", graphUserProps, "$top", "$select", "$filter", "$count", "$skiptoken")
	if err != nil {
		WriteProblem(c, err)
		return
	}
	s.graphRead(c, func(t *domain.Tenant) (any, error) {
		page, next, total := s.filterUsers(t, q)
		out := make([]map[string]any, 0, len(page))
		for _, u := range page {
			out = append(out, selectFields(s.graphUser(t, u), q.fields))
		}
		var count *int
		if q.count {
			count = &total
		}
		return graphList(c, "users", out, next, count), nil
	})
}

// filterUsers returns a page of the active users q keeps (by id), the sort
// key of a next page ("" if none) and how many users q keeps in all.
func (s *Server) filterUsers(t *domain.Tenant, q odataQuery) (page []*domain.User, next string, total int) {
	for _, id := range graphKeys(t.Users) {
		u := t.Users[id]
		if u.Deleted || (q.filter != nil && !q.filter(s.graphUserRow(t, u))) {
			continue
		}
		total++
		if id <= q.after && q.after != "" {
			continue
		}
		if len(page) < q.top {
			page = append(page, u)
		} else if next == "" && len(page) > 0 {
			next = page[len(page)-1].ID
		}
	}
	return page, next, total
}

func (s *Server) graphGetUser(c *gin.Context) {
	if c.Param("id") == "$count" {
		s.graphCountUsers(c)
		return
	}
	q, err := parseOData(c, "microsoft.graph.user", graphUserProps, "$select")
	if err != nil {
		WriteProblem(c, err)
		return
	}
	s.graphReadUser(c, q.fields)
}

// graphReadUser answers the user the path names (id or UPN) with the
// fields $select asked for.
func (s *Server) graphReadUser(c *gin.Context, fields []string) {
	s.graphRead(c, func(t *domain.Tenant) (any, error) {
		u, err := findUser(t, c.Param("id"))
		if err != nil {
			return nil, err
		}
		return selectFields(s.graphUser(t, u), fields), nil
	})
}

// graphCountUsers answers GET /users/$count (text/plain; ConsistencyLevel:
// eventual required, as Graph does).
func (s *Server) graphCountUsers(c *gin.Context) {
	q, err := parseOData(c, "microsoft.graph.user", graphUserProps, "$filter")
	if err == nil && !strings.EqualFold(c.GetHeader("ConsistencyLevel"), "eventual") {
		err = graphUnsupported("/users/$count requires the request header 'ConsistencyLevel: eventual'.")
	}
	if err != nil {
		WriteProblem(c, err)
		return
	}
	q.top = 0
	out, ok := s.graphView(c, func(t *domain.Tenant) (any, error) {
		_, _, n := s.filterUsers(t, q)
		return n, nil
	})
	if ok {
		c.Data(http.StatusOK, "text/plain; charset=utf-8", []byte(strconv.Itoa(out.(int))))
	}
}

// graphKeys returns the keys of m in order.
func graphKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

var graphLicenseDetailProps = []string{"id", "skuId", "skuPartNumber", "servicePlans"}

func (s *Server) graphLicenseDetails(c *gin.Context) {
	q, err := parseOData(c, "microsoft.graph.licenseDetails", graphLicenseDetailProps, "$select")
	if err != nil {
		WriteProblem(c, err)
		return
	}
	s.graphRead(c, func(t *domain.Tenant) (any, error) {
		u, err := findUser(t, c.Param("id"))
		if err != nil {
			return nil, err
		}
		out := []map[string]any{}
		for _, v := range s.activeLicenses(t, u) {
			plans := []map[string]any{}
			if prod, ok := s.cfg.Decider.Catalog.Product(t, v.SkuID); ok {
				for _, sp := range prod.ServicePlans {
					status := "Disabled"
					if slices.Contains(v.EnabledPlans, sp.ID) {
						status = "Success"
					}
					plans = append(plans, map[string]any{"servicePlanId": sp.ID, "servicePlanName": sp.Name,
						"provisioningStatus": status, "appliesTo": "User"})
				}
			}
			out = append(out, selectFields(map[string]any{"id": v.SkuID, "skuId": v.SkuID, "skuPartNumber": v.SkuPartNumber,
				"servicePlans": plans}, q.fields))
		}
		return graphList(c, "users('"+u.ID+"')/licenseDetails", out, "", nil), nil
	})
}

// reprocessLicenseAssignment answers the user as it is: seatledger retries
// a member's errored group licenses within every command that could clear
// the error (licenses freed, usage location set, group changed: R11), so
// there is nothing left to reprocess.
func (s *Server) graphReprocess(c *gin.Context) {
	if _, err := readBody(c); err != nil {
		WriteProblem(c, err)
		return
	}
	q, err := parseOData(c, "microsoft.graph.user", graphUserProps)
	if err != nil {
		WriteProblem(c, err)
		return
	}
	s.graphReadUser(c, q.fields)
}

// ---- assignLicense

// graphAssignLicenseBody is the body of assignLicense. Instance
// annotations (@odata.type, which the SDKs send) are accepted; any other
// unknown property is refused, as Graph does.
type graphAssignLicenseBody struct {
	AddLicenses    []LicenseRequest `json:"addLicenses"`
	RemoveLicenses []string         `json:"removeLicenses"`
}

func decodeGraphAssign(body []byte) (graphAssignLicenseBody, error) {
	var out graphAssignLicenseBody
	if len(bytes.TrimSpace(body)) == 0 {
		return out, graphErr(http.StatusBadRequest, graphBadRequest, "Empty Payload. JSON content expected.")
	}
	// What JSON leaves open is refused as on /v1: a property given twice
	// (encoding/json would keep the last) and a string that is not UTF-8
	// (it would become U+FFFD). Names are checked below, where instance
	// annotations are allowed.
	if err := checkStrict(body, nil); err != nil {
		return out, err
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return out, graphErr(http.StatusBadRequest, graphBadRequest, "Invalid request body: %v.", err)
	}
	if err := onlyProps(top, "microsoft.graph.assignLicense", "addLicenses", "removeLicenses"); err != nil {
		return out, err
	}
	if raw, ok := top["addLicenses"]; ok {
		var items []map[string]json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return out, graphErr(http.StatusBadRequest, graphBadRequest, "Invalid request body: addLicenses must be an array of assignedLicense objects.")
		}
		for _, it := range items {
			if err := onlyProps(it, "microsoft.graph.assignedLicense", "skuId", "disabledPlans"); err != nil {
				return out, err
			}
		}
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return out, graphErr(http.StatusBadRequest, graphBadRequest, "Invalid request body: %v.", err)
	}
	if _, ok := top["addLicenses"]; !ok {
		return out, graphErr(http.StatusBadRequest, graphBadRequest, "Invalid request body: addLicenses is required (use [] to only remove).")
	}
	if _, ok := top["removeLicenses"]; !ok {
		return out, graphErr(http.StatusBadRequest, graphBadRequest, "Invalid request body: removeLicenses is required (use [] to only add).")
	}
	return out, nil
}

func onlyProps(obj map[string]json.RawMessage, typ string, known ...string) error {
	for k := range obj {
		if strings.HasPrefix(k, "@") || strings.Contains(k, "@odata.") || slices.Contains(known, k) {
			continue
		}
		return graphErr(http.StatusBadRequest, graphBadRequest, "Property '%s' does not exist on type '%s'.", bounded(k), typ)
	}
	return nil
}

// graphCommand runs a command of a Graph write, with the Idempotency-Key
// rules of /v1 (see stamp).
func (s *Server) graphCommand(c *gin.Context, key string, body []byte, cmd domain.Command) (commands.Result, error) {
	stamp(c, cmd, TenantOf(c), ActorOf(c), key, body)
	res, err := s.cfg.Commands.Handle(c.Request.Context(), cmd)
	if err == nil && res.Replayed {
		c.Writer.Header().Set(HeaderReplayed, "true")
	}
	return res, err
}

// graphWriteRequest reads what every Graph write starts with.
func graphWriteRequest(c *gin.Context) (key string, body graphAssignLicenseBody, raw []byte, ok bool) {
	key, err := idempotencyKey(c)
	if err == nil {
		raw, err = readBody(c)
	}
	if err == nil {
		body, err = decodeGraphAssign(raw)
	}
	if err != nil {
		WriteProblem(c, err)
		return "", body, nil, false
	}
	skus := make([]string, 0, len(body.AddLicenses))
	for _, l := range body.AddLicenses {
		skus = append(skus, l.SkuID)
	}
	c.Set(ctxGraphSkus, skus)
	return key, body, raw, true
}

// checkSkus refuses, as Graph does (400), a skuId the tenant holds no
// subscription of.
func (s *Server) checkSkus(t *domain.Tenant, body graphAssignLicenseBody) error {
	for _, l := range body.AddLicenses {
		prod, ok := s.cfg.Decider.Catalog.Product(t, l.SkuID)
		if !ok || t.Pools[prod.SkuID] == nil {
			return graphErr(http.StatusBadRequest, graphBadRequest, "License %s does not correspond to a valid company License.", bounded(l.SkuID))
		}
	}
	return nil
}

// graphPrecheck resolves the target in the current state before a write,
// for an actor who may read the tenant (graphReader): anyone else gets
// 403 whatever the target, not an answer that says whether it exists. The
// command then checks the actor's roles for the write itself (R1).
func (s *Server) graphPrecheck(c *gin.Context, fn func(t *domain.Tenant) error) bool {
	tenant, a := TenantOf(c), ActorOf(c)
	var err error
	viewErr := s.cfg.Commands.View(c.Request.Context(), tenant, func(t *domain.Tenant) error {
		if err = graphReader(tenant, t, a); err == nil {
			err = fn(t)
		}
		return nil
	})
	if viewErr != nil {
		err = viewErr
	}
	if err != nil {
		WriteProblem(c, err)
		return false
	}
	return true
}

func (s *Server) graphAssignUserLicense(c *gin.Context) {
	key, body, raw, ok := graphWriteRequest(c)
	if !ok {
		return
	}
	var userID string
	if !s.graphPrecheck(c, func(t *domain.Tenant) error {
		u, err := findUser(t, c.Param("id"))
		if err != nil {
			return err
		}
		userID = u.ID
		return s.checkSkus(t, body)
	}) {
		return
	}
	if _, err := s.graphCommand(c, key, raw, &domain.UpdateUserLicenses{UserID: userID, Add: licenses(body.AddLicenses), Remove: body.RemoveLicenses}); err != nil {
		WriteProblem(c, err)
		return
	}
	s.graphRead(c, func(t *domain.Tenant) (any, error) {
		u := t.Users[userID]
		if u == nil || u.Deleted {
			return nil, graphNotFoundErr(userID)
		}
		return s.graphUser(t, u), nil
	})
}

// ---- groups

var graphGroupProps = []string{"id", "displayName", "assignedLicenses", "hasMembersWithLicenseErrors",
	"licenseProcessingState", "securityEnabled", "mailEnabled", "groupTypes"}

// erroredMembers lists, by id, the active members g could not license.
func erroredMembers(t *domain.Tenant, g *domain.Group) []*domain.User {
	src := domain.GroupSource(g.ID)
	var out []*domain.User
	for _, id := range graphKeys(g.Members) {
		u := t.Users[id]
		if u == nil || u.Deleted {
			continue
		}
		for _, l := range u.Licenses {
			if s := l.Sources[src]; s != nil && !s.Active() {
				out = append(out, u)
				break
			}
		}
	}
	return out
}

func graphGroup(t *domain.Tenant, g *domain.Group) map[string]any {
	assigned := []map[string]any{}
	for _, sku := range graphKeys(g.Licenses) {
		assigned = append(assigned, map[string]any{"skuId": sku, "disabledPlans": nonNil(g.Licenses[sku].DisabledPlans)})
	}
	return map[string]any{
		"id": g.ID, "displayName": g.DisplayName, "assignedLicenses": assigned,
		"hasMembersWithLicenseErrors": len(erroredMembers(t, g)) > 0,
		// Group licenses are applied within the command that changes them.
		"licenseProcessingState": map[string]any{"state": "ProcessingComplete"},
		"securityEnabled":        true, "mailEnabled": false, "groupTypes": []string{},
	}
}

func findGroup(t *domain.Tenant, id string) (*domain.Group, error) {
	g := t.Groups[id]
	if g == nil {
		return nil, graphNotFoundErr(id)
	}
	return g, nil
}

func (s *Server) graphGetGroup(c *gin.Context) {
	q, err := parseOData(c, "microsoft.graph.group", graphGroupProps, "$select")
	if err != nil {
		WriteProblem(c, err)
		return
	}
	s.graphRead(c, func(t *domain.Tenant) (any, error) {
		g, err := findGroup(t, c.Param("id"))
		if err != nil {
			return nil, err
		}
		return selectFields(graphGroup(t, g), q.fields), nil
	})
}

var graphDirectoryObjectProps = []string{"id", "userPrincipalName", "displayName", "userType", "usageLocation", "accountEnabled"}

func (s *Server) graphMembersWithLicenseErrors(c *gin.Context) {
	q, err := parseOData(c, "microsoft.graph.directoryObject", graphDirectoryObjectProps, "$top", "$select", "$count", "$skiptoken")
	if err != nil {
		WriteProblem(c, err)
		return
	}
	s.graphRead(c, func(t *domain.Tenant) (any, error) {
		g, err := findGroup(t, c.Param("id"))
		if err != nil {
			return nil, err
		}
		all := erroredMembers(t, g)
		var (
			out  []map[string]any
			next string
		)
		for _, u := range all {
			if q.after != "" && u.ID <= q.after {
				continue
			}
			if len(out) == q.top {
				next = out[len(out)-1]["id"].(string)
				break
			}
			out = append(out, selectFields(map[string]any{"@odata.type": "#microsoft.graph.user", "id": u.ID,
				"userPrincipalName": u.UserPrincipalName, "displayName": u.DisplayName, "userType": u.UserType,
				"usageLocation": u.UsageLocation, "accountEnabled": !u.Deleted}, q.fields))
		}
		var count *int
		if q.count {
			n := len(all)
			count = &n
		}
		return graphList(c, "directoryObjects", out, next, count), nil
	})
}

func (s *Server) graphAssignGroupLicense(c *gin.Context) {
	key, body, raw, ok := graphWriteRequest(c)
	if !ok {
		return
	}
	groupID := c.Param("id")
	if !s.graphPrecheck(c, func(t *domain.Tenant) error {
		if _, err := findGroup(t, groupID); err != nil {
			return err
		}
		return s.checkSkus(t, body)
	}) {
		return
	}
	if _, err := s.graphCommand(c, key, raw, &domain.AssignGroupLicenses{GroupID: groupID, Add: licenses(body.AddLicenses), Remove: body.RemoveLicenses}); err != nil {
		WriteProblem(c, err)
		return
	}
	s.graphAnswer(c, http.StatusAccepted, func(t *domain.Tenant) (any, error) {
		g, err := findGroup(t, groupID)
		if err != nil {
			return nil, err
		}
		return graphGroup(t, g), nil
	})
}

// ---- subscribedSkus

var graphSkuProps = []string{"id", "accountId", "accountName", "skuId", "skuPartNumber", "appliesTo", "capabilityStatus",
	"consumedUnits", "prepaidUnits", "servicePlans", "subscriptionIds"}

// graphSkus lists the tenant's products in Graph's subscribedSku shape, by
// skuId: prepaid units summed over its subscriptions by status.
func (s *Server) graphSkus(t *domain.Tenant) []map[string]any {
	bySku := map[string][]*domain.Subscription{}
	for _, sub := range t.Subscriptions {
		bySku[sub.SkuID] = append(bySku[sub.SkuID], sub)
	}
	out := []map[string]any{}
	for _, sku := range graphKeys(bySku) {
		subs := bySku[sku]
		sort.Slice(subs, func(i, j int) bool { return subs[i].ID < subs[j].ID })
		units := map[string]int{"enabled": 0, "suspended": 0, "warning": 0, "lockedOut": 0}
		ids := []string{}
		for _, sub := range subs {
			switch sub.Status {
			case domain.StatusEnabled:
				units["enabled"] += sub.Quantity
			case domain.StatusWarning, domain.StatusExpired:
				// Graph's warning units are those in their grace period.
				units["warning"] += sub.Quantity
			case domain.StatusSuspended, domain.StatusDisabled:
				units["suspended"] += sub.Quantity
			}
			if sub.Status != domain.StatusDeleted {
				ids = append(ids, sub.ID)
			}
		}
		status := "Deleted"
		switch {
		case units["enabled"] > 0:
			status = "Enabled"
		case units["warning"] > 0:
			status = "Warning"
		case units["suspended"] > 0:
			status = "Suspended"
		}
		pool := t.Pool(sku)
		row := map[string]any{
			"id": t.ID + "_" + sku, "accountId": t.ID, "accountName": t.Name, "skuId": sku, "skuPartNumber": "",
			"appliesTo": "User", "capabilityStatus": status, "consumedUnits": pool.Assigned + pool.SelfServiceAssigned,
			"prepaidUnits": units, "servicePlans": []map[string]any{}, "subscriptionIds": ids,
		}
		if prod, ok := s.cfg.Decider.Catalog.Product(t, sku); ok {
			row["skuPartNumber"] = prod.SkuPartNumber
			plans := []map[string]any{}
			for _, sp := range prod.ServicePlans {
				plans = append(plans, map[string]any{"servicePlanId": sp.ID, "servicePlanName": sp.Name,
					"provisioningStatus": "Success", "appliesTo": "User"})
			}
			row["servicePlans"] = plans
		}
		out = append(out, row)
	}
	return out
}

func (s *Server) graphSubscribedSkus(c *gin.Context) {
	q, err := parseOData(c, "microsoft.graph.subscribedSku", graphSkuProps, "$select")
	if err != nil {
		WriteProblem(c, err)
		return
	}
	s.graphRead(c, func(t *domain.Tenant) (any, error) {
		rows := s.graphSkus(t)
		for i := range rows {
			rows[i] = selectFields(rows[i], q.fields)
		}
		return graphList(c, "subscribedSkus", rows, "", nil), nil
	})
}

func (s *Server) graphSubscribedSku(c *gin.Context) {
	q, err := parseOData(c, "microsoft.graph.subscribedSku", graphSkuProps, "$select")
	if err != nil {
		WriteProblem(c, err)
		return
	}
	id := c.Param("id")
	s.graphRead(c, func(t *domain.Tenant) (any, error) {
		for _, row := range s.graphSkus(t) {
			if strings.EqualFold(row["id"].(string), id) {
				return selectFields(row, q.fields), nil
			}
		}
		return nil, graphNotFoundErr(id)
	})
}
