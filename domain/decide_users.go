package domain

import (
	"maps"
	"slices"
	"sort"
)

var userAdmins = []Role{RoleGlobalAdmin, RoleUserAdmin}

func validateNewUser(field string, u *NewUser) error {
	if err := checkID(field+".id", u.ID); err != nil {
		return err
	}
	if reservedUserID(u.ID) {
		return invalid(field+".id", "user id %q is reserved for the platform operator; choose another", u.ID)
	}
	if err := checkUPN(field+".userPrincipalName", u.UserPrincipalName); err != nil {
		return err
	}
	if err := checkText(field+".displayName", u.DisplayName, false); err != nil {
		return err
	}
	if u.DisplayName == "" {
		u.DisplayName = u.UserPrincipalName
	}
	switch u.UserType {
	case "":
		u.UserType = UserTypeMember
	case UserTypeMember, UserTypeGuest:
	default:
		return invalid(field+".userType", "userType must be Member or Guest, not %q", Echo(u.UserType))
	}
	return checkUsageLocation(u.UsageLocation)
}

func userAdded(u NewUser) UserAdded {
	return UserAdded{UserID: u.ID, UserPrincipalName: u.UserPrincipalName, DisplayName: u.DisplayName,
		UserType: u.UserType, UsageLocation: u.UsageLocation}
}

func (dec *decision) createTenant(c *CreateTenant) error {
	if !dec.m.Actor.Operator {
		return ruleErr(CodeNotAllowedForRole, "", "only the operator can create tenants")
	}
	if err := checkID("id", dec.m.TenantID); err != nil {
		return err
	}
	if dec.t.Exists() {
		return Errorf(CodeAlreadyExists, "id", "tenant %q already exists", dec.m.TenantID)
	}
	if err := checkText("name", c.Name, true); err != nil {
		return err
	}
	admin := c.GlobalAdmin
	if err := validateNewUser("globalAdmin", &admin); err != nil {
		return err
	}
	if admin.UserType == UserTypeGuest {
		return invalid("globalAdmin.userType", "the first Global admin must be a member, not a guest")
	}
	dec.emit(TenantCreated{TenantID: dec.m.TenantID, Name: c.Name}, userAdded(admin),
		AdminRolesChanged{UserID: admin.ID, Roles: []Role{RoleGlobalAdmin}})
	return nil
}

func (dec *decision) addUser(c *AddUser) error {
	if err := dec.authorize("", "add users", userAdmins...); err != nil {
		return err
	}
	nu := c.User
	if err := validateNewUser("user", &nu); err != nil {
		return err
	}
	if dec.t.Users[nu.ID] != nil {
		return Errorf(CodeAlreadyExists, "id", "user %q already exists", nu.ID)
	}
	if err := dec.upnTaken(nu.UserPrincipalName); err != nil {
		return err
	}
	dec.emit(userAdded(nu))
	if len(c.Licenses) == 0 {
		return nil
	}
	return dec.licenseNewUser(nu, c.Licenses)
}

// licenseNewUser gives a user being added their licenses, under the rules
// of assigning: the actor's role (R1), a guest needs a Global admin (R2),
// enough licenses (R3), no conflicting plans (R6, R7), a usage location
// (R14). A refusal refuses the whole command: the user is not added.
func (dec *decision) licenseNewUser(nu NewUser, ls []LicenseRequest) error {
	if err := dec.authorize("R1", "assign licenses", licenseAdmins...); err != nil {
		return err
	}
	u := &User{ID: nu.ID, UserPrincipalName: nu.UserPrincipalName, DisplayName: nu.DisplayName,
		UserType: nu.UserType, UsageLocation: nu.UsageLocation, Licenses: map[string]*UserLicense{}}
	if err := dec.authorizeForUser(u); err != nil {
		return err
	}
	du := dec.draft(u)
	seen := map[string]bool{}
	for _, l := range ls {
		p, err := dec.owned("licenses.skuId", l.SkuID)
		if err != nil {
			return err
		}
		if seen[p.SkuID] {
			return invalid("licenses", "%s is named twice in one request", p.DisplayName)
		}
		seen[p.SkuID] = true
		disabled, err := planIDs(p, "licenses.disabledPlans", l.DisabledPlans)
		if err != nil {
			return err
		}
		if err := dec.giveDirect(du, p, disabled, false); err != nil {
			return err
		}
	}
	return dec.finish(false)
}

func (dec *decision) updateUser(c *UpdateUser) error {
	if err := dec.authorize("", "change users", userAdmins...); err != nil {
		return err
	}
	u, err := dec.activeUser("userId", c.UserID)
	if err != nil {
		return err
	}
	if err := dec.authorizeOver(u, "change"); err != nil {
		return err
	}
	if err := checkText("displayName", c.DisplayName, false); err != nil {
		return err
	}
	if err := checkUsageLocation(c.UsageLocation); err != nil {
		return err
	}
	if (c.DisplayName == "" || c.DisplayName == u.DisplayName) && (c.UsageLocation == "" || c.UsageLocation == u.UsageLocation) {
		return nil
	}
	dec.emit(UserUpdated{UserID: u.ID, DisplayName: c.DisplayName, UsageLocation: c.UsageLocation})
	if c.UsageLocation != "" && u.UsageLocation == "" {
		// Members waiting on a usage location get their group licenses (R11, R14).
		moved := *u
		moved.UsageLocation = c.UsageLocation
		du := dec.draft(u)
		du.u = &moved
		dec.retryErrored(u.ID)
		dec.holds()
	}
	return nil
}

func (dec *decision) deleteUser(c *DeleteUser) error {
	if err := dec.authorize("R9", "delete users", userAdmins...); err != nil {
		return err
	}
	u, err := dec.activeUser("userId", c.UserID)
	if err != nil {
		return err
	}
	if dec.m.Actor.UserID == u.ID {
		return invalid("userId", "you cannot delete your own account")
	}
	if err := dec.authorizeOver(u, "delete"); err != nil {
		return err
	}
	if u.HasRole(RoleGlobalAdmin) && dec.globalAdmins() == 1 {
		// Whoever acts, the operator included: a tenant always has one.
		return invalid("userId", "%s is the tenant's last active Global admin; make another user Global admin first", u.ID)
	}
	du := dec.draft(u)
	dec.emit(UserDeleted{UserID: u.ID})
	// Licenses are freed at once (R9); Evolve clears them on UserDeleted.
	for _, sku := range slices.Sorted(maps.Keys(du.lic)) {
		dec.setLicense(du, sku, func(l *UserLicense) { clear(l.Sources) })
	}
	du.deleted = true
	// Exchange data is held, and OneDrive files because the user is deleted (R10).
	if du.hadMailbox && u.Holds[WorkloadExchange] == nil {
		dec.emit(dec.held(u.ID, WorkloadExchange, "userDeleted"))
	}
	if du.hadOneDrive && u.Holds[WorkloadOneDrive] == nil {
		dec.emit(dec.held(u.ID, WorkloadOneDrive, "userDeleted"))
	}
	dec.retryErrored("")
	dec.holds()
	return nil
}

func (dec *decision) restoreUser(c *RestoreUser) error {
	if err := dec.authorize("R9", "restore users", userAdmins...); err != nil {
		return err
	}
	if err := checkID("userId", c.UserID); err != nil {
		return err
	}
	u := dec.t.Users[c.UserID]
	if u == nil {
		return notFound("user %q does not exist", c.UserID)
	}
	if !u.Deleted {
		return invalid("userId", "user %q is not deleted", c.UserID)
	}
	if err := dec.authorizeOver(u, "restore"); err != nil {
		return err
	}
	if dec.now.Sub(u.DeletedAt) > dec.d.Policy.RestoreWindow {
		return ruleErr(CodeRestoreWindowExpired, "R9", "user %s was deleted on %s; a user can be restored for %s only",
			u.ID, u.DeletedAt.Format("2006-01-02"), dec.d.Policy.RestoreWindow)
	}
	dec.emit(UserRestored{UserID: u.ID})
	restored := *u
	restored.Deleted = false
	du := dec.draft(u)
	du.u, du.deleted = &restored, false
	du.lic = map[string]*UserLicense{}
	// Direct licenses come back, licenses permitting (R9, R3).
	if u.Stash != nil {
		for _, sku := range slices.Sorted(maps.Keys(u.Stash.Licenses)) {
			dec.assign(du, sku, SourceDirect, u.Stash.Licenses[sku])
		}
		if err := dec.checkPlans(du); err != nil {
			return err
		}
		if err := dec.checkCounts(); err != nil {
			return err
		}
		for _, gid := range u.Stash.Groups {
			g := dec.t.Groups[gid]
			if g == nil {
				continue
			}
			dec.emit(GroupMemberAdded{GroupID: gid, UserID: u.ID})
			for _, sku := range slices.Sorted(maps.Keys(g.Licenses)) {
				dec.tryGroup(du, gid, sku, g.Licenses[sku].DisabledPlans)
			}
		}
	}
	if h := u.Holds[WorkloadOneDrive]; h != nil {
		dec.emit(DataHoldReleased{UserID: u.ID, Workload: WorkloadOneDrive, Reason: "userRestored"})
	}
	if h := u.Holds[WorkloadExchange]; h != nil && dec.hasMailbox(du) {
		dec.emit(DataHoldReleased{UserID: u.ID, Workload: WorkloadExchange, Reason: "userRestored"})
	}
	return nil
}

func (dec *decision) setAdminRoles(c *SetAdminRoles) error {
	if err := dec.authorize("R1", "change admin roles", RoleGlobalAdmin); err != nil {
		return err
	}
	u, err := dec.activeUser("userId", c.UserID)
	if err != nil {
		return err
	}
	seen := map[Role]bool{}
	roles := []Role{}
	for _, r := range c.Roles {
		if !ValidRole(r) {
			return invalid("roles", "unknown role %q: use GlobalAdministrator, LicenseAdministrator, UserAdministrator or BillingAdministrator", Echo(string(r)))
		}
		if !seen[r] {
			seen[r] = true
			roles = append(roles, r)
		}
	}
	sort.Slice(roles, func(i, j int) bool { return roles[i] < roles[j] })
	if u.HasRole(RoleGlobalAdmin) && !seen[RoleGlobalAdmin] && dec.globalAdmins() == 1 {
		return invalid("roles", "%s is the tenant's last Global admin; make another user Global admin first", u.ID)
	}
	if len(roles) == len(u.Roles) {
		same := true
		for i := range roles {
			same = same && roles[i] == u.Roles[i]
		}
		if same {
			return nil
		}
	}
	dec.emit(AdminRolesChanged{UserID: u.ID, Roles: roles})
	return nil
}

// authorizeOver checks that the actor may change user u (R1): as in Entra
// ID, only a Global admin (or the operator) changes, deletes or restores a
// Global admin, and an admin of another role only users whose every admin
// role they hold too (a User admin manages users and User admins, not a
// License or Billing admin). Licenses are not concerned: license admins
// assign them to every user, admins included.
func (dec *decision) authorizeOver(u *User, what Phrase) error {
	a := dec.m.Actor
	if a.Operator || len(u.Roles) == 0 {
		return nil
	}
	actor := dec.t.Users[a.UserID]
	if actor == nil || actor.HasRole(RoleGlobalAdmin) {
		return nil // authorize has refused a stranger already
	}
	for _, r := range u.Roles {
		if !actor.HasRole(r) {
			return ruleErr(CodeNotAllowedForRole, "R1", "%s is a %s: only a Global admin can %s them", u.ID, roleName(r), what)
		}
	}
	return nil
}

func roleName(r Role) any {
	switch r {
	case RoleGlobalAdmin:
		return Phrase("Global admin")
	case RoleLicenseAdmin:
		return Phrase("License admin")
	case RoleUserAdmin:
		return Phrase("User admin")
	case RoleBillingAdmin:
		return Phrase("Billing admin")
	}
	return string(r)
}

func (dec *decision) globalAdmins() int {
	n := 0
	for _, u := range dec.t.Users {
		if !u.Deleted && u.HasRole(RoleGlobalAdmin) {
			n++
		}
	}
	return n
}

func (dec *decision) setRetentionHold(c *SetRetentionHold) error {
	if err := dec.authorize("R10", "set retention holds", RoleGlobalAdmin); err != nil {
		return err
	}
	if err := checkID("userId", c.UserID); err != nil {
		return err
	}
	u := dec.t.Users[c.UserID]
	if u == nil {
		return notFound("user %q does not exist", c.UserID)
	}
	if u.RetentionHold == c.Enabled {
		return nil
	}
	dec.emit(RetentionHoldSet{UserID: u.ID, Enabled: c.Enabled})
	if !c.Enabled {
		// The purge clock starts again from now (R10).
		for _, w := range slices.Sorted(maps.Keys(u.Holds)) {
			h := u.Holds[w]
			after := dec.now.Add(dec.d.Policy.HoldPeriod)
			if h.PurgeAfter.After(after) {
				after = h.PurgeAfter
			}
			dec.emit(DataHeld{UserID: u.ID, Workload: w, HeldSince: h.HeldSince, PurgeAfter: after, Reason: "retentionHoldRemoved"})
		}
	}
	return nil
}

func (dec *decision) purge(c *PurgeHeldData) error {
	if dec.m.Actor.System == "" && !dec.m.Actor.Operator {
		return ruleErr(CodeNotAllowedForRole, "R10", "held data is purged by the scheduler only")
	}
	refs := c.Batch
	if c.UserID != "" || c.Workload != "" {
		refs = append([]HeldDataRef{{UserID: c.UserID, Workload: c.Workload}}, refs...)
	}
	if len(refs) == 0 {
		return invalid("batch", "name the held data to purge")
	}
	var first error
	seen := map[HeldDataRef]bool{}
	for _, r := range refs {
		if seen[r] {
			continue
		}
		seen[r] = true
		if err := dec.purgeOne(r); err != nil {
			if first == nil {
				first = err
			}
			if len(refs) == 1 {
				return err
			}
		}
	}
	if len(dec.out) == 0 {
		return first
	}
	return nil
}

func (dec *decision) purgeOne(r HeldDataRef) error {
	if err := checkID("userId", r.UserID); err != nil {
		return err
	}
	u := dec.t.Users[r.UserID]
	if u == nil {
		return notFound("user %q does not exist", r.UserID)
	}
	h := u.Holds[r.Workload]
	if h == nil {
		return ruleErr(CodeNoHeldData, "R10", "user %s has no %s data on hold (never held, released or already purged)", u.ID, r.Workload)
	}
	if u.RetentionHold {
		return ruleErr(CodeDataRetained, "R10", "user %s is under a retention hold: their %s data is kept", u.ID, r.Workload)
	}
	if dec.now.Before(h.PurgeAfter) {
		return ruleErr(CodePurgeNotDue, "R10", "the %s data of %s is held until %s", r.Workload, u.ID, h.PurgeAfter.Format("2006-01-02T15:04:05Z07:00"))
	}
	dec.emit(HeldDataPurged{UserID: u.ID, Workload: r.Workload})
	return nil
}
