package domain

import (
	"maps"
	"slices"
	"strings"
)

func (dec *decision) group(id string) (*Group, error) {
	if err := checkID("groupId", id); err != nil {
		return nil, err
	}
	g := dec.t.Groups[id]
	if g == nil {
		return nil, Errorf(CodeNotFound, "groupId", "group %q does not exist", id)
	}
	return g, nil
}

func (dec *decision) createGroup(c *CreateGroup) error {
	if err := dec.authorize("", "create groups", userAdmins...); err != nil {
		return err
	}
	if err := checkID("id", c.GroupID); err != nil {
		return err
	}
	if err := checkText("displayName", c.DisplayName, true); err != nil {
		return err
	}
	if dec.t.Groups[c.GroupID] != nil {
		return Errorf(CodeAlreadyExists, "id", "group %q already exists", c.GroupID)
	}
	dec.emit(GroupCreated{GroupID: c.GroupID, DisplayName: c.DisplayName})
	return nil
}

func (dec *decision) addGroupMember(c *AddGroupMember) error {
	if err := dec.authorize("", "change group members", userAdmins...); err != nil {
		return err
	}
	g, err := dec.group(c.GroupID)
	if err != nil {
		return err
	}
	u, err := dec.activeUser("userId", c.UserID)
	if err != nil {
		return err
	}
	if g.Members[u.ID] {
		return nil
	}
	if len(g.Licenses) > 0 {
		if err := dec.authorizeForUser(u); err != nil { // a licensed group licenses its guests (R2)
			return err
		}
	}
	dec.emit(GroupMemberAdded{GroupID: g.ID, UserID: u.ID})
	du := dec.draft(u)
	for _, sku := range slices.Sorted(maps.Keys(g.Licenses)) {
		dec.tryGroup(du, g.ID, sku, g.Licenses[sku].DisabledPlans)
	}
	dec.holds()
	return nil
}

func (dec *decision) removeGroupMember(c *RemoveGroupMember) error {
	if err := dec.authorize("", "change group members", userAdmins...); err != nil {
		return err
	}
	g, err := dec.group(c.GroupID)
	if err != nil {
		return err
	}
	if err := checkID("userId", c.UserID); err != nil {
		return err
	}
	u := dec.t.Users[c.UserID]
	if u == nil {
		return notFound("user %q does not exist", c.UserID)
	}
	if !g.Members[u.ID] {
		return nil
	}
	dec.emit(GroupMemberRemoved{GroupID: g.ID, UserID: u.ID})
	// Only the inherited assignments go (R11).
	du := dec.draft(u)
	src := GroupSource(g.ID)
	for _, sku := range slices.Sorted(maps.Keys(du.lic)) {
		if du.lic[sku].Sources[src] != nil {
			dec.unassign(du, sku, src)
		}
	}
	dec.holds()
	dec.retryErrored("")
	dec.holds()
	return nil
}

func (dec *decision) assignGroupLicenses(c *AssignGroupLicenses) error {
	if err := dec.authorize("R1", "assign licenses", licenseAdmins...); err != nil {
		return err
	}
	g, err := dec.group(c.GroupID)
	if err != nil {
		return err
	}
	if len(c.Add) == 0 && len(c.Remove) == 0 {
		return invalid("addLicenses", "name licenses to add or remove")
	}
	removing := map[string]bool{}
	for _, r := range c.Remove {
		p, err := dec.resolve("removeLicenses", r)
		if err != nil {
			return err
		}
		removing[p.SkuID] = true
	}
	type add struct {
		sku      string
		disabled []string
	}
	var adds []add
	seen := map[string]bool{}
	for _, a := range c.Add {
		p, err := dec.owned("addLicenses.skuId", a.SkuID)
		if err != nil {
			return err
		}
		if removing[p.SkuID] || seen[p.SkuID] {
			return invalid("addLicenses", "%s is named twice in one request", p.DisplayName)
		}
		seen[p.SkuID] = true
		disabled, err := planIDs(p, "addLicenses.disabledPlans", a.DisabledPlans)
		if err != nil {
			return err
		}
		adds = append(adds, add{p.SkuID, disabled})
	}
	if len(adds) > 0 {
		for _, uid := range slices.Sorted(maps.Keys(g.Members)) {
			if u := dec.t.Users[uid]; u != nil {
				if err := dec.authorizeForUser(u); err != nil {
					return err
				}
			}
		}
	}
	src := GroupSource(g.ID)
	members := slices.Sorted(maps.Keys(g.Members))
	for _, sku := range slices.Sorted(maps.Keys(removing)) {
		if g.Licenses[sku] == nil {
			continue
		}
		dec.emit(GroupLicenseUnassigned{GroupID: g.ID, SkuID: sku})
		for _, uid := range members {
			if u := dec.t.Users[uid]; u != nil {
				if du := dec.draft(u); du.lic[sku] != nil && du.lic[sku].Sources[src] != nil {
					dec.unassign(du, sku, src)
				}
			}
		}
	}
	for _, a := range adds {
		if gl := g.Licenses[a.sku]; gl != nil {
			if slices.Equal(gl.DisabledPlans, a.disabled) {
				continue
			}
			// New service plan choices flow to every member holding it.
			dec.emit(GroupLicenseAssigned{GroupID: g.ID, SkuID: a.sku, DisabledPlans: a.disabled})
			for _, uid := range members {
				u := dec.t.Users[uid]
				if u == nil {
					continue
				}
				du := dec.draft(u)
				if s := du.lic[a.sku]; s != nil && s.Sources[src] != nil && s.Sources[src].Active() {
					dec.changePlans(du, a.sku, src, a.disabled)
					if err := dec.checkPlans(du); err != nil {
						return err
					}
				}
			}
			continue
		}
		dec.emit(GroupLicenseAssigned{GroupID: g.ID, SkuID: a.sku, DisabledPlans: a.disabled})
		for _, uid := range members {
			if u := dec.t.Users[uid]; u != nil && !u.Deleted {
				dec.tryGroup(dec.draft(u), g.ID, a.sku, a.disabled)
			}
		}
	}
	dec.holds()
	if len(removing) > 0 {
		dec.retryErrored("")
		dec.holds()
	}
	return nil
}

func (dec *decision) renameGroup(c *RenameGroup) error {
	if err := dec.authorize("", "rename groups", userAdmins...); err != nil {
		return err
	}
	g, err := dec.group(c.GroupID)
	if err != nil {
		return err
	}
	if err := checkText("displayName", c.DisplayName, true); err != nil {
		return err
	}
	if c.DisplayName == g.DisplayName {
		return nil
	}
	dec.emit(GroupRenamed{GroupID: g.ID, DisplayName: c.DisplayName})
	return nil
}

// deleteGroup deletes a group that gives no license (R18): as in Entra ID,
// the licenses are removed from the group first, which takes the inherited
// assignments from its members under the rules of that command; deleting
// the group then changes no one's licenses.
func (dec *decision) deleteGroup(c *DeleteGroup) error {
	if err := dec.authorize("", "delete groups", userAdmins...); err != nil {
		return err
	}
	g, err := dec.group(c.GroupID)
	if err != nil {
		return err
	}
	if len(g.Licenses) > 0 {
		names := make([]string, 0, len(g.Licenses))
		for _, sku := range slices.Sorted(maps.Keys(g.Licenses)) {
			name := sku
			if p := dec.d.product(dec.t, sku); p != nil {
				name = p.SkuPartNumber
			}
			names = append(names, name)
		}
		return ruleErr(CodeGroupHasLicenses, "R18",
			"group %s gives the licenses %s: remove them from the group (POST .../groups/%s/assignLicense with removeLicenses) before deleting it",
			g.ID, strings.Join(names, ", "), g.ID)
	}
	dec.emit(GroupDeleted{GroupID: g.ID})
	return nil
}
