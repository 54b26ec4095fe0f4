package domain

import (
	"maps"
	"slices"
)

// licensee returns a user whose licenses the actor may change (R2 for guests).
func (dec *decision) licensee(field, id string) (*draftUser, error) {
	u, err := dec.activeUser(field, id)
	if err != nil {
		return nil, err
	}
	if err := dec.authorizeForUser(u); err != nil {
		return nil, err
	}
	return dec.draft(u), nil
}

// giveDirect assigns a product directly. A user who already has it directly
// keeps it; with update, its service plan choices are replaced.
func (dec *decision) giveDirect(du *draftUser, p *Product, disabled []string, update bool) error {
	if l := du.lic[p.SkuID]; l != nil && l.Sources[SourceDirect] != nil {
		if update && !slices.Equal(l.Sources[SourceDirect].DisabledPlans, disabled) {
			dec.changePlans(du, p.SkuID, SourceDirect, disabled)
		}
		return nil
	}
	if err := dec.needUsageLocation(du.u); err != nil {
		return err
	}
	dec.assign(du, p.SkuID, SourceDirect, disabled)
	return nil
}

// takeDirect removes a product's direct assignment. A user who does not
// have the product at all is refused (invalid_request naming field, where
// the request named the product): one rule for every route that removes a
// license (docs/API.md, "Removing a license the user does not have").
func (dec *decision) takeDirect(du *draftUser, p *Product, field string) (bool, error) {
	l := du.lic[p.SkuID]
	switch {
	case l != nil && l.Sources[SourceDirect] != nil:
		dec.unassign(du, p.SkuID, SourceDirect)
		return true, nil
	case l != nil && l.Sources[SourceSelfService] != nil:
		return false, ruleErr(CodeSelfServiceSubscription, "R8",
			"%s got %s through a self-service purchase: take over the subscription before unassigning it", du.u.ID, p.DisplayName)
	case l != nil:
		return false, ruleErr(CodeInheritedLicense, "R11",
			"%s inherits %s from a group: remove them from the group or the license from the group", du.u.ID, p.DisplayName)
	}
	return false, invalid(field, "user %s does not have %s", du.u.ID, p.DisplayName)
}

// finish checks every touched user's plans (R6, R7) and the counts (R3),
// then decides holds (R10) and, when licenses were freed, retries members
// in error (R11).
func (dec *decision) finish(freed bool) error {
	for _, du := range dec.drafts {
		if !du.deleted {
			if err := dec.checkPlans(du); err != nil {
				return err
			}
		}
	}
	if err := dec.checkCounts(); err != nil {
		return err
	}
	dec.holds()
	if freed {
		dec.retryErrored("")
		dec.holds()
	}
	return nil
}

func (dec *decision) assignLicenses(c *AssignLicenses) error {
	if err := dec.checkBulk(c.Users); err != nil {
		return err
	}
	if err := dec.authorize("R1", "assign licenses", licenseAdmins...); err != nil {
		return err
	}
	p, err := dec.owned("skuId", c.SkuID)
	if err != nil {
		return err
	}
	disabled, err := planIDs(p, "disabledPlans", c.DisabledPlans)
	if err != nil {
		return err
	}
	for _, id := range c.Users {
		du, err := dec.licensee("users", id)
		if err != nil {
			return err
		}
		if err := dec.giveDirect(du, p, disabled, false); err != nil {
			return err
		}
	}
	return dec.finish(false)
}

func (dec *decision) unassignLicenses(c *UnassignLicenses) error {
	if err := dec.checkBulk(c.Users); err != nil {
		return err
	}
	if err := dec.authorize("R1", "unassign licenses", licenseAdmins...); err != nil {
		return err
	}
	p, err := dec.resolve("skuId", c.SkuID)
	if err != nil {
		return err
	}
	for _, id := range c.Users {
		du, err := dec.licensee("users", id)
		if err != nil {
			return err
		}
		if _, err := dec.takeDirect(du, p, "users"); err != nil {
			return err
		}
	}
	return dec.finish(true)
}

func (dec *decision) updateUserLicenses(c *UpdateUserLicenses) error {
	if err := dec.authorize("R1", "assign licenses", licenseAdmins...); err != nil {
		return err
	}
	if len(c.Add) == 0 && len(c.Remove) == 0 {
		return invalid("addLicenses", "name licenses to add or remove")
	}
	du, err := dec.licensee("userId", c.UserID)
	if err != nil {
		return err
	}
	removing := map[string]bool{}
	for _, r := range c.Remove {
		p, err := dec.resolve("removeLicenses", r)
		if err != nil {
			return err
		}
		if removing[p.SkuID] {
			return invalid("removeLicenses", "%s is named twice", p.DisplayName)
		}
		removing[p.SkuID] = true
		if _, err := dec.takeDirect(du, p, "removeLicenses"); err != nil {
			return err
		}
	}
	adding := map[string]bool{}
	for _, a := range c.Add {
		p, err := dec.owned("addLicenses.skuId", a.SkuID)
		if err != nil {
			return err
		}
		if removing[p.SkuID] || adding[p.SkuID] {
			return invalid("addLicenses", "%s is named twice in one request", p.DisplayName)
		}
		adding[p.SkuID] = true
		disabled, err := planIDs(p, "addLicenses.disabledPlans", a.DisabledPlans)
		if err != nil {
			return err
		}
		if err := dec.giveDirect(du, p, disabled, true); err != nil {
			return err
		}
	}
	return dec.finish(len(removing) > 0)
}

func (dec *decision) manageLicenses(c *ManageLicenses) error {
	if err := dec.checkBulk(c.Users); err != nil {
		return err
	}
	if err := dec.authorize("R1", "manage licenses", licenseAdmins...); err != nil {
		return err
	}
	switch c.Mode {
	case ModeAssignMore, ModeReplace:
		if len(c.Add) == 0 {
			return invalid("addLicenses", "mode %s needs licenses to assign", c.Mode)
		}
	case ModeUnassignAll:
		if len(c.Add) > 0 {
			return invalid("addLicenses", "mode UnassignAll takes no licenses to assign")
		}
	default:
		return invalid("mode", "mode must be AssignMore, Replace or UnassignAll, not %q", Echo(c.Mode))
	}
	type add struct {
		p        *Product
		disabled []string
	}
	adds := make([]add, 0, len(c.Add))
	keep := map[string]bool{}
	for _, a := range c.Add {
		p, err := dec.owned("addLicenses.skuId", a.SkuID)
		if err != nil {
			return err
		}
		if keep[p.SkuID] {
			return invalid("addLicenses", "%s is named twice", p.DisplayName)
		}
		keep[p.SkuID] = true
		disabled, err := planIDs(p, "addLicenses.disabledPlans", a.DisabledPlans)
		if err != nil {
			return err
		}
		adds = append(adds, add{p, disabled})
	}
	freed := false
	for _, id := range c.Users {
		du, err := dec.licensee("users", id)
		if err != nil {
			return err
		}
		if c.Mode != ModeAssignMore {
			// Replace and UnassignAll take away every other direct license.
			for _, sku := range slices.Sorted(maps.Keys(du.lic)) {
				if l := du.lic[sku]; !keep[sku] && l.Sources[SourceDirect] != nil {
					dec.unassign(du, sku, SourceDirect)
					freed = true
				}
			}
		}
		for _, a := range adds {
			if err := dec.giveDirect(du, a.p, a.disabled, c.Mode == ModeReplace); err != nil {
				return err
			}
		}
	}
	return dec.finish(freed)
}

func (dec *decision) changeLicensePlans(c *ChangeLicensePlans) error {
	if err := dec.authorize("R7", "turn apps and services on or off", licenseAdmins...); err != nil {
		return err
	}
	du, err := dec.licensee("userId", c.UserID)
	if err != nil {
		return err
	}
	p, err := dec.resolve("skuId", c.SkuID)
	if err != nil {
		return err
	}
	disabled, err := planIDs(p, "disabledPlans", c.DisabledPlans)
	if err != nil {
		return err
	}
	l := du.lic[p.SkuID]
	switch {
	case l == nil:
		return invalid("skuId", "user %s does not have %s", du.u.ID, p.DisplayName) // as takeDirect
	case l.Sources[SourceDirect] != nil:
		if slices.Equal(l.Sources[SourceDirect].DisabledPlans, disabled) {
			return nil
		}
		dec.changePlans(du, p.SkuID, SourceDirect, disabled)
	case l.Sources[SourceSelfService] != nil:
		return ruleErr(CodeSelfServiceSubscription, "R8", "%s of %s is a self-service purchase: take it over first", p.DisplayName, du.u.ID)
	default:
		return ruleErr(CodeInheritedLicense, "R11", "%s inherits %s from a group: change the group's license instead", du.u.ID, p.DisplayName)
	}
	return dec.finish(true)
}
