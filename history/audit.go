package history

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventcodec"
	"github.com/seatledger/seatledger/tenantstream"
)

// Record is one audit log entry: an event as a person reads it.
type Record struct {
	Version    uint64          `json:"version"`
	OccurredAt time.Time       `json:"occurredAt"`
	Type       string          `json:"type"`
	Actor      domain.Actor    `json:"actor"`
	Target     Target          `json:"target"`
	Summary    string          `json:"summary"`
	Data       json.RawMessage `json:"data"`
	EventID    string          `json:"eventId"`
	CommandID  string          `json:"commandId"`
	// CorrelationID is the id of the request that sent the command
	// (X-Request-Id); absent for the scheduler's.
	CorrelationID string `json:"correlationId,omitempty"`
}

// Target is what an event is about.
type Target struct {
	UserID         string `json:"userId,omitempty"`
	SkuID          string `json:"skuId,omitempty"`
	GroupID        string `json:"groupId,omitempty"`
	SubscriptionID string `json:"subscriptionId,omitempty"`
}

// Filter narrows the audit log. Zero fields match everything.
type Filter struct {
	Since, Until time.Time
	Actor        string // domain.Actor.String(): a user id (user:<id> for a reserved one), "operator" or "system:<name>"
	User         string // the target user
	Sku          string // skuId or skuPartNumber
	Type         string // event type
}

// Page is one page of the audit log.
type Page struct {
	Records    []Record `json:"records"`
	NextCursor string   `json:"nextCursor,omitempty"` // same direction
	PrevCursor string   `json:"prevCursor,omitempty"` // the other direction
	Head       uint64   `json:"head"`
}

// ScanBudget bounds the events one page reads, so a filter that matches
// little cannot make one request read a whole long stream: the page then
// comes back short with a cursor to continue.
const ScanBudget = 20_000

// cursor is a position between two versions and a direction.
type cursor struct {
	backward bool
	v        uint64 // forward: next version to read; backward: last version to read
}

func (c cursor) String() string {
	d := "f"
	if c.backward {
		d = "b"
	}
	return base64.RawURLEncoding.EncodeToString([]byte(d + strconv.FormatUint(c.v, 10)))
}

func parseCursor(s string) (cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 2 || (b[0] != 'f' && b[0] != 'b') {
		return cursor{}, &domain.Error{Code: domain.CodeInvalidRequest, Field: "cursor", Detail: "cursor is not one this server gave"}
	}
	v, err := strconv.ParseUint(string(b[1:]), 10, 64)
	if err != nil {
		return cursor{}, &domain.Error{Code: domain.CodeInvalidRequest, Field: "cursor", Detail: "cursor is not one this server gave"}
	}
	return cursor{backward: b[0] == 'b', v: v}, nil
}

// Audit reads a page of the tenant's audit log. Without a cursor it starts
// at the oldest matching event (or, with backward, the newest). Cursors are
// versions, so pages are stable while events are appended.
func (s *Service) Audit(ctx context.Context, tenantID string, f Filter, cursorText string, backward bool, limit int) (Page, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	head, err := s.Head(ctx, tenantID)
	if err != nil {
		return Page{}, err
	}
	if head == 0 {
		return Page{}, domain.Errorf(domain.CodeNotFound, "", "tenant %q does not exist", tenantID)
	}
	// Times are version bounds: occurredAt never decreases within a stream.
	lo, hi := uint64(1), head
	if !f.Since.IsZero() {
		v, err := s.VersionAt(ctx, tenantID, f.Since.Add(-time.Nanosecond))
		if err != nil {
			return Page{}, err
		}
		lo = v + 1
	}
	if !f.Until.IsZero() {
		if hi, err = s.VersionAt(ctx, tenantID, f.Until); err != nil {
			return Page{}, err
		}
	}
	if f.Sku != "" {
		if p, ok := s.Catalog.Lookup(f.Sku); ok {
			f.Sku = p.SkuID
		}
	}
	c := cursor{backward: backward, v: lo}
	if backward {
		c.v = hi
	}
	if cursorText != "" {
		if c, err = parseCursor(cursorText); err != nil {
			return Page{}, err
		}
	}
	page := Page{Records: []Record{}, Head: head}
	stream := tenantstream.Name(tenantID)
	// next is the next version to read; done when it leaves [lo, hi].
	next := c.v
	if !c.backward && next < lo {
		next = lo
	}
	if c.backward && next > hi {
		next = hi
	}
	needles := f.needles()
	inRange := func(v uint64) bool { return v >= lo && v <= hi && v > 0 }
	for scanned := 0; inRange(next) && len(page.Records) < limit && scanned < ScanBudget; {
		from, n := next, min(hi-next+1, 512)
		if c.backward {
			n = min(next-lo+1, 512)
			from = next - n + 1
		}
		recs, err := s.Store.ReadStream(ctx, stream, from, int(n))
		if err != nil {
			return Page{}, err
		}
		if len(recs) == 0 {
			break
		}
		if c.backward {
			slices.Reverse(recs)
		}
		for _, r := range recs {
			scanned++
			if c.backward {
				next = r.Version - 1
			} else {
				next = r.Version + 1
			}
			// A type filter is checked on the stored type, before
			// decoding (upcasters change an event's data, never its
			// type), and the other filters before the record is made
			// (its summary): a rare filter reads ScanBudget events,
			// most of which it need not decode or describe.
			if f.Type != "" && r.Type != "" && !strings.EqualFold(f.Type, r.Type) {
				continue
			}
			if !mayMatch(r.Data, needles) {
				continue
			}
			e, err := eventcodec.Decode(r.Data, s.Upcasters)
			if err != nil {
				return Page{}, fmt.Errorf("%s version %d: %w", stream, r.Version, err)
			}
			if !f.matchesEvent(e) {
				continue
			}
			if rec := s.record(e, r.Data); f.matches(rec) {
				page.Records = append(page.Records, rec)
				if len(page.Records) == limit {
					break
				}
			}
		}
	}
	if inRange(next) {
		page.NextCursor = cursor{backward: c.backward, v: next}.String()
	}
	if len(page.Records) > 0 {
		first := page.Records[0].Version
		if c.backward && first < hi {
			page.PrevCursor = cursor{backward: false, v: first + 1}.String()
		} else if !c.backward && first > lo {
			page.PrevCursor = cursor{backward: true, v: first - 1}.String()
		}
	}
	return page, nil
}

func (f Filter) matches(r Record) bool {
	switch {
	case f.Type != "" && !strings.EqualFold(f.Type, r.Type):
		return false
	case f.Actor != "" && f.Actor != r.Actor.String():
		return false
	case f.User != "" && f.User != r.Target.UserID:
		return false
	case f.Sku != "" && !strings.EqualFold(f.Sku, r.Target.SkuID):
		return false
	}
	return true
}

// needles are strings an event's JSON must hold to match the actor
// filter: the id it names, quoted. Ids are written without escapes
// (docs/API.md: [A-Za-z0-9._@-]), and the actor is the envelope's, which
// upcasters never change, so an event without the quoted id cannot match;
// a value outside that alphabet gives no needle (the filter then decides
// after decoding).
func (f Filter) needles() [][]byte {
	id := f.Actor
	if rest, ok := strings.CutPrefix(id, "system:"); ok {
		id = rest
	} else if rest, ok := strings.CutPrefix(id, "user:"); ok {
		id = rest
	}
	// "operator" is the key of the operator's actor: "operator":true.
	if id == "" {
		return nil
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._@-", c)) {
			return nil
		}
	}
	return [][]byte{[]byte(`"` + id + `"`)}
}

// mayMatch reports whether data holds every needle.
func mayMatch(data []byte, needles [][]byte) bool {
	for _, n := range needles {
		if !bytes.Contains(data, n) {
			return false
		}
	}
	return true
}

// matchesEvent is matches for an event, before its record is made.
func (f Filter) matchesEvent(e domain.Event) bool {
	if f.Type == "" && f.Actor == "" && f.User == "" && f.Sku == "" {
		return true
	}
	return f.matches(Record{Type: e.Type, Actor: e.Actor, Target: targetOf(e.Payload)})
}

// Envelope is the raw JSON of an event's envelope with its data.
type envelopeData struct {
	Data json.RawMessage `json:"data"`
}

func (s *Service) record(e domain.Event, raw []byte) Record {
	var d envelopeData
	_ = eventcodec.Unmarshal(raw, &d)
	return Record{Version: e.Version, OccurredAt: e.OccurredAt, Type: e.Type, Actor: e.Actor, Target: targetOf(e.Payload),
		Summary: Summarize(s.Catalog, e), Data: d.Data, EventID: e.EventID, CommandID: e.CommandID, CorrelationID: e.CorrelationID}
}

// targetOf says what an event is about, from its payload.
func targetOf(p domain.Payload) Target {
	switch p := p.(type) {
	case domain.UserAdded:
		return Target{UserID: p.UserID}
	case domain.UserUpdated:
		return Target{UserID: p.UserID}
	case domain.UserDeleted:
		return Target{UserID: p.UserID}
	case domain.UserRestored:
		return Target{UserID: p.UserID}
	case domain.AdminRolesChanged:
		return Target{UserID: p.UserID}
	case domain.GroupCreated:
		return Target{GroupID: p.GroupID}
	case domain.GroupRenamed:
		return Target{GroupID: p.GroupID}
	case domain.GroupDeleted:
		return Target{GroupID: p.GroupID}
	case domain.GroupMemberAdded:
		return Target{GroupID: p.GroupID, UserID: p.UserID}
	case domain.GroupMemberRemoved:
		return Target{GroupID: p.GroupID, UserID: p.UserID}
	case domain.ProductRegistered:
		return Target{SkuID: p.Product.SkuID}
	case domain.SubscriptionPurchased:
		return Target{SubscriptionID: p.SubscriptionID, SkuID: p.SkuID, UserID: p.PurchasedBy}
	case domain.SubscriptionQuantityChanged:
		return Target{SubscriptionID: p.SubscriptionID, SkuID: p.SkuID}
	case domain.SubscriptionTakenOver:
		return Target{SubscriptionID: p.SubscriptionID, SkuID: p.SkuID}
	case domain.SubscriptionStatusChanged:
		return Target{SubscriptionID: p.SubscriptionID, SkuID: p.SkuID}
	case domain.SubscriptionRecurringBillingSet:
		return Target{SubscriptionID: p.SubscriptionID, SkuID: p.SkuID}
	case domain.SubscriptionCancelled:
		return Target{SubscriptionID: p.SubscriptionID, SkuID: p.SkuID}
	case domain.SubscriptionRenewed:
		return Target{SubscriptionID: p.SubscriptionID, SkuID: p.SkuID}
	case domain.SubscriptionExpired:
		return Target{SubscriptionID: p.SubscriptionID, SkuID: p.SkuID}
	case domain.SubscriptionDisabled:
		return Target{SubscriptionID: p.SubscriptionID, SkuID: p.SkuID}
	case domain.LicenseAssigned:
		return Target{UserID: p.UserID, SkuID: p.SkuID, GroupID: groupOf(p.Source)}
	case domain.LicenseUnassigned:
		return Target{UserID: p.UserID, SkuID: p.SkuID, GroupID: groupOf(p.Source)}
	case domain.LicensePlansChanged:
		return Target{UserID: p.UserID, SkuID: p.SkuID, GroupID: groupOf(p.Source)}
	case domain.GroupLicenseAssigned:
		return Target{GroupID: p.GroupID, SkuID: p.SkuID}
	case domain.GroupLicenseUnassigned:
		return Target{GroupID: p.GroupID, SkuID: p.SkuID}
	case domain.GroupLicenseErrored:
		return Target{GroupID: p.GroupID, SkuID: p.SkuID, UserID: p.UserID}
	case domain.DataHeld:
		return Target{UserID: p.UserID}
	case domain.DataHoldReleased:
		return Target{UserID: p.UserID}
	case domain.HeldDataPurged:
		return Target{UserID: p.UserID}
	case domain.RetentionHoldSet:
		return Target{UserID: p.UserID}
	case domain.AppInstalled:
		return Target{SkuID: p.SkuID}
	}
	return Target{}
}

func groupOf(source string) string {
	g, _ := domain.GroupOfSource(source)
	return g
}

// Summarize is a one-line account of an event for people.
func Summarize(c *domain.Catalog, e domain.Event) string {
	who := e.Actor.String()
	if who == "" {
		who = "someone"
	}
	name := func(sku string) string {
		if p, ok := c.Lookup(sku); ok {
			return p.DisplayName
		}
		return sku
	}
	switch p := e.Payload.(type) {
	case domain.TenantCreated:
		return fmt.Sprintf("%s created tenant %s (%s)", who, p.TenantID, p.Name)
	case domain.UserAdded:
		return fmt.Sprintf("%s added %s user %s (%s)", who, strings.ToLower(p.UserType), p.UserID, p.UserPrincipalName)
	case domain.UserUpdated:
		return fmt.Sprintf("%s updated user %s", who, p.UserID)
	case domain.UserDeleted:
		return fmt.Sprintf("%s deleted user %s; their licenses were freed", who, p.UserID)
	case domain.UserRestored:
		return fmt.Sprintf("%s restored user %s", who, p.UserID)
	case domain.AdminRolesChanged:
		if len(p.Roles) == 0 {
			return fmt.Sprintf("%s removed every admin role of %s", who, p.UserID)
		}
		rs := make([]string, len(p.Roles))
		for i, r := range p.Roles {
			rs[i] = string(r)
		}
		return fmt.Sprintf("%s set the admin roles of %s to %s", who, p.UserID, strings.Join(rs, ", "))
	case domain.GroupCreated:
		return fmt.Sprintf("%s created group %s (%s)", who, p.GroupID, p.DisplayName)
	case domain.GroupRenamed:
		return fmt.Sprintf("%s renamed group %s to %s", who, p.GroupID, p.DisplayName)
	case domain.GroupDeleted:
		return fmt.Sprintf("%s deleted group %s", who, p.GroupID)
	case domain.GroupMemberAdded:
		return fmt.Sprintf("%s added %s to group %s", who, p.UserID, p.GroupID)
	case domain.GroupMemberRemoved:
		return fmt.Sprintf("%s removed %s from group %s", who, p.UserID, p.GroupID)
	case domain.ProductRegistered:
		return fmt.Sprintf("%s registered the app %s by %s", who, p.Product.DisplayName, p.Product.Publisher)
	case domain.SubscriptionPurchased:
		return fmt.Sprintf("%s bought %d licenses of %s (subscription %s, %s)", who, p.Quantity, name(p.SkuID), p.SubscriptionID, p.Kind)
	case domain.SubscriptionQuantityChanged:
		return fmt.Sprintf("%s changed subscription %s of %s from %d to %d licenses", who, p.SubscriptionID, name(p.SkuID), p.Previous, p.Quantity)
	case domain.SubscriptionTakenOver:
		return fmt.Sprintf("%s took over the self-service subscription %s", who, p.SubscriptionID)
	case domain.SubscriptionStatusChanged:
		return fmt.Sprintf("%s changed subscription %s from %s to %s", who, p.SubscriptionID, p.Previous, p.Status)
	case domain.SubscriptionRecurringBillingSet:
		if p.Enabled {
			return fmt.Sprintf("%s turned recurring billing on for subscription %s", who, p.SubscriptionID)
		}
		return fmt.Sprintf("%s turned recurring billing off for subscription %s: it ends with its term", who, p.SubscriptionID)
	case domain.SubscriptionCancelled:
		refund := "a trial, nothing to refund"
		if p.Refund {
			refund = "with a refund"
		}
		return fmt.Sprintf("%s cancelled subscription %s of %s (%s): Disabled, deleted at %s", who, p.SubscriptionID, name(p.SkuID),
			refund, p.DeleteAt.Format(time.RFC3339))
	case domain.SubscriptionRenewed:
		what := "renewed"
		switch {
		case p.Reactivated:
			what = "reactivated (it was " + p.Previous + ")"
		case p.Converted:
			what = "converted from a trial"
		}
		return fmt.Sprintf("subscription %s of %s %s: term %s to %s", p.SubscriptionID, name(p.SkuID), what,
			p.TermStart.Format(time.RFC3339), p.TermEnd.Format(time.RFC3339))
	case domain.SubscriptionExpired:
		return fmt.Sprintf("subscription %s of %s expired at the end of its term (%s); it is disabled at %s", p.SubscriptionID,
			name(p.SkuID), p.TermEnd.Format(time.RFC3339), p.DisableAt.Format(time.RFC3339))
	case domain.SubscriptionDisabled:
		return fmt.Sprintf("subscription %s of %s is disabled (it was %s): its users lose access; it is deleted at %s",
			p.SubscriptionID, name(p.SkuID), p.Previous, p.DeleteAt.Format(time.RFC3339))
	case domain.LicenseAssigned:
		return fmt.Sprintf("%s assigned %s to %s (%s)", who, name(p.SkuID), p.UserID, p.Source)
	case domain.LicenseUnassigned:
		return fmt.Sprintf("%s unassigned %s from %s (%s)", who, name(p.SkuID), p.UserID, p.Source)
	case domain.LicensePlansChanged:
		return fmt.Sprintf("%s turned %d services of %s off for %s", who, len(p.DisabledPlans), name(p.SkuID), p.UserID)
	case domain.GroupLicenseAssigned:
		return fmt.Sprintf("%s gave group %s the license %s", who, p.GroupID, name(p.SkuID))
	case domain.GroupLicenseUnassigned:
		return fmt.Sprintf("%s took the license %s from group %s", who, name(p.SkuID), p.GroupID)
	case domain.GroupLicenseErrored:
		return fmt.Sprintf("%s could not get %s from group %s: %s", p.UserID, name(p.SkuID), p.GroupID, p.Error)
	case domain.DataHeld:
		return fmt.Sprintf("the %s data of %s is held until %s (%s)", p.Workload, p.UserID, p.PurgeAfter.Format(time.RFC3339), p.Reason)
	case domain.DataHoldReleased:
		return fmt.Sprintf("the hold on the %s data of %s was released (%s)", p.Workload, p.UserID, p.Reason)
	case domain.HeldDataPurged:
		return fmt.Sprintf("the held %s data of %s was deleted for good", p.Workload, p.UserID)
	case domain.RetentionHoldSet:
		if p.Enabled {
			return fmt.Sprintf("%s put %s under a retention hold", who, p.UserID)
		}
		return fmt.Sprintf("%s lifted the retention hold of %s", who, p.UserID)
	case domain.AppInstalled:
		return fmt.Sprintf("%s installed the app %s", who, p.SkuID)
	case domain.NothingChanged:
		return fmt.Sprintf("%s: %s changed nothing (it was already so)", who, p.Command)
	}
	return fmt.Sprintf("%s: %s", who, e.Type)
}

// Events reads raw envelopes of the tenant from a version.
func (s *Service) Events(ctx context.Context, tenantID string, fromVersion uint64, limit int) ([]json.RawMessage, uint64, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	if fromVersion == 0 {
		fromVersion = 1
	}
	recs, err := s.Store.ReadStream(ctx, tenantstream.Name(tenantID), fromVersion, limit)
	if err != nil {
		return nil, 0, err
	}
	out := make([]json.RawMessage, len(recs))
	next := uint64(0)
	for i, r := range recs {
		out[i] = json.RawMessage(r.Data)
		next = r.Version + 1
	}
	if len(recs) < limit {
		next = 0
	}
	return out, next, nil
}

// EventsBefore reads the raw envelopes of the tenant's page of at most
// limit events that ends at toVersion (bounded by the head), oldest first:
// a timeline scrolled back from a version. first is the page's first
// version (0: no events).
func (s *Service) EventsBefore(ctx context.Context, tenantID string, toVersion uint64, limit int) ([]json.RawMessage, uint64, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	head, err := s.Head(ctx, tenantID)
	if err != nil {
		return nil, 0, err
	}
	toVersion = min(toVersion, head)
	if toVersion == 0 {
		return []json.RawMessage{}, 0, nil
	}
	from := uint64(1)
	if toVersion > uint64(limit) {
		from = toVersion - uint64(limit) + 1
	}
	recs, err := s.Store.ReadStream(ctx, tenantstream.Name(tenantID), from, int(toVersion-from+1))
	if err != nil {
		return nil, 0, err
	}
	out := make([]json.RawMessage, len(recs))
	for i, r := range recs {
		out[i] = json.RawMessage(r.Data)
	}
	if len(recs) == 0 {
		return out, 0, nil
	}
	return out, recs[0].Version, nil
}
