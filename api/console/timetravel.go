package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The time-travel debugger (issue #21): a timeline of the tenant's events,
// a cursor on it, the state at the cursor with what its event changed, a
// diff against a second cursor and blame for every value shown. Its URL
// says everything it shows (?v=N&cmp=M&blame=path), so the page renders
// on the server from the URL alone; assets/timetravel.js only makes the
// cursor move without reloading the page, by swapping in the fragment
// that /timeTravel/fragment renders with the same templates.
//
// Every read is a /v1 call: GET …/events (a window around the cursor),
// GET …/state?version=N (or ?at= for the date-time cursor), GET
// …/state/diff, GET …/state/blame.

// ttWindow is how many events the timeline shows on each side of the
// cursor; ttRows bounds the rows of a state list (rows the cursor's event
// changed always show).
const (
	ttWindow = 12
	ttRows   = 100
)

type ttActor struct {
	UserID   string `json:"userId"`
	Operator bool   `json:"operator"`
	System   string `json:"system"`
}

func (a ttActor) String() string {
	switch {
	case a.Operator:
		return "operator"
	case a.System != "":
		return "system:" + a.System
	}
	return a.UserID
}

// ttEvent is an event of GET …/events (a raw envelope) or of a diff's
// events (which add the summary).
type ttEvent struct {
	Version       uint64    `json:"version"`
	Type          string    `json:"type"`
	OccurredAt    time.Time `json:"occurredAt"`
	Actor         ttActor   `json:"actor"`
	CommandID     string    `json:"commandId"`
	CorrelationID string    `json:"correlationId"`
	Summary       string    `json:"summary"`
	Current       bool      `json:"-"`
}

// Kind is the timeline's colour of the event: users, licenses,
// subscriptions, groups, held data.
func (e ttEvent) Kind() string { return eventKind(e.Type) }

func eventKind(typ string) string {
	switch {
	case strings.HasPrefix(typ, "Group"):
		return "groups"
	case strings.HasPrefix(typ, "License"):
		return "licenses"
	case strings.HasPrefix(typ, "Subscription"), typ == "ProductRegistered", typ == "AppInstalled":
		return "subscriptions"
	case typ == "DataHeld", typ == "DataHoldReleased", typ == "HeldDataPurged", typ == "RetentionHoldSet":
		return "held"
	case strings.HasPrefix(typ, "User"), typ == "AdminRolesChanged", typ == "TenantCreated":
		return "users"
	}
	return "other"
}

// ttCommand is the events of one command, in a row of the timeline.
type ttCommand struct {
	CommandID     string
	CorrelationID string
	Events        []ttEvent
	Current       bool
}

type ttLicense struct {
	SkuID         string   `json:"skuId"`
	SkuPartNumber string   `json:"skuPartNumber"`
	DisabledPlans []string `json:"disabledPlans"`
	Sources       []string `json:"sources"`
	State         string   `json:"state"`
	Error         string   `json:"error"`
	Changed       bool     `json:"-"`
}

type ttUser struct {
	ID                string      `json:"id"`
	UserPrincipalName string      `json:"userPrincipalName"`
	DisplayName       string      `json:"displayName"`
	Status            string      `json:"status"`
	Licenses          []ttLicense `json:"licenses"`
	Changed           bool        `json:"-"`
}

type ttState struct {
	Version  uint64    `json:"version"`
	AsOf     time.Time `json:"asOf"`
	Name     string    `json:"name"`
	Products []struct {
		SkuID         string `json:"skuId"`
		SkuPartNumber string `json:"skuPartNumber"`
		Total         int    `json:"total"`
		Assigned      int    `json:"assigned"`
		Available     int    `json:"available"`
		Changed       bool   `json:"-"`
	} `json:"products"`
	Subscriptions []struct {
		ID       string    `json:"id"`
		SkuID    string    `json:"skuId"`
		Quantity int       `json:"quantity"`
		Status   string    `json:"status"`
		TermEnd  time.Time `json:"termEnd"`
		Changed  bool      `json:"-"`
	} `json:"subscriptions"`
	Users  []ttUser `json:"users"`
	Groups []struct {
		ID          string   `json:"id"`
		DisplayName string   `json:"displayName"`
		Members     []string `json:"members"`
		Licenses    []struct {
			SkuID         string   `json:"skuId"`
			DisabledPlans []string `json:"disabledPlans"`
		} `json:"licenses"`
		MembersWithLicenseErrors []struct {
			UserID string `json:"userId"`
			SkuID  string `json:"skuId"`
			Error  string `json:"error"`
		} `json:"membersWithLicenseErrors"`
		Changed bool `json:"-"`
	} `json:"groups"`
	HeldData []ttHeld `json:"heldData"`
	// UsersTotal and HeldDataTotal count the whole state's (the page
	// reads ttRows users and their held data: /state?usersLimit).
	UsersTotal    int `json:"usersTotal"`
	HeldDataTotal int `json:"heldDataTotal"`
	// MoreUsers and MoreHeld count the rows not shown.
	MoreUsers int `json:"-"`
	MoreHeld  int `json:"-"`
	paged     bool
}

type ttHeld struct {
	UserID     string    `json:"userId"`
	Workload   string    `json:"workload"`
	HeldSince  time.Time `json:"heldSince"`
	PurgeAfter time.Time `json:"purgeAfter"`
	Reason     string    `json:"reason"`
	Retained   bool      `json:"retained"`
	Changed    bool      `json:"-"`
}

// ttChange is a change of GET …/state/diff.
type ttChange struct {
	Entity string          `json:"entity"`
	Kind   string          `json:"kind"`
	Before json.RawMessage `json:"before"`
	After  json.RawMessage `json:"after"`
	Events []uint64        `json:"events"`
}

// Pretty is a change's side as indented JSON.
func (ttChange) Pretty(raw json.RawMessage) string {
	var b bytes.Buffer
	if len(raw) == 0 || json.Indent(&b, raw, "", "  ") != nil {
		return string(raw)
	}
	return b.String()
}

// ChangePretty is a change's side as indented JSON.
func (*timeTravelData) ChangePretty(raw json.RawMessage) string { return ttChange{}.Pretty(raw) }

// The kinds of a change, as the diff names them.
var _ = []string{msg("timetravel.change.added"), msg("timetravel.change.removed"), msg("timetravel.change.changed")}

// FirstEvents are the versions a change names, at most 20.
func (c ttChange) FirstEvents() []uint64 { return c.Events[:min(len(c.Events), 20)] }

type ttDiff struct {
	From    uint64     `json:"from"`
	To      uint64     `json:"to"`
	Changes []ttChange `json:"changes"`
	Events  []ttEvent  `json:"events"`
}

type ttBlame struct {
	Path    string `json:"-"`
	Version uint64 `json:"version"`
	Entries []struct {
		Path    string `json:"path"`
		Version uint64 `json:"version"`
	} `json:"entries"`
	Events map[string]ttEvent `json:"events"`
}

// Event is the event an entry names.
func (b *ttBlame) Event(v uint64) ttEvent { return b.Events[strconv.FormatUint(v, 10)] }

// timeTravelData is what the page shows: the URL's cursor and the answers.
type timeTravelData struct {
	Base     string // the page's path
	V        uint64 // the cursor
	Head     uint64 // the tenant's last version
	Cmp      uint64 // the second cursor (0: none)
	At       string // the cursor's time for the date-time input (UTC)
	All      bool   // every user shown
	Event    *ttEvent
	Prev     uint64 // one event back (0: none)
	Next     uint64 // one event on (0: none)
	PrevCmd  uint64 // the end of the previous command (0: none)
	NextCmd  uint64 // the end of the next command (0: none)
	Back10   uint64
	Fwd10    uint64
	Timeline []ttCommand
	State    *ttState
	Changes  []ttChange // what the cursor's event changed
	Diff     *ttDiff    // the diff with the second cursor
	Blame    *ttBlame
	Plans    map[string]string // service plan id → name
}

// Href is the page's URL at cursor v, keeping the second cursor.
func (d *timeTravelData) Href(v uint64) string {
	q := url.Values{"v": {strconv.FormatUint(v, 10)}}
	if d.Cmp > 0 {
		q.Set("cmp", strconv.FormatUint(d.Cmp, 10))
	}
	return d.Base + "?" + q.Encode()
}

// BlameHref is the page's URL with the blame of path at the cursor.
func (d *timeTravelData) BlameHref(parts ...string) string {
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	q := url.Values{"v": {strconv.FormatUint(d.V, 10)}, "blame": {strings.Join(parts, "/")}}
	if d.Cmp > 0 {
		q.Set("cmp", strconv.FormatUint(d.Cmp, 10))
	}
	return d.Base + "?" + q.Encode() + "#tt-blame"
}

// CmpHref is the page's URL comparing the cursor with version m.
func (d *timeTravelData) CmpHref(m uint64) string {
	return d.Base + "?" + url.Values{"v": {strconv.FormatUint(d.V, 10)}, "cmp": {strconv.FormatUint(m, 10)}}.Encode()
}

// Plan is a service plan's name (its id when the catalog lacks it).
func (d *timeTravelData) Plan(id string) string {
	if n := d.Plans[id]; n != "" {
		return n
	}
	return id
}

// Sku is a product's part number at the cursor (its skuId when the
// state's products do not name it).
func (d *timeTravelData) Sku(id string) string {
	if d.State != nil {
		for _, p := range d.State.Products {
			if p.SkuID == id && p.SkuPartNumber != "" {
				return p.SkuPartNumber
			}
		}
	}
	return id
}

// DiffFrom and DiffTo are the diff's points, oldest first.
func (d *timeTravelData) DiffFrom() uint64 { return min(d.V, d.Cmp) }
func (d *timeTravelData) DiffTo() uint64   { return max(d.V, d.Cmp) }

// planNames is the catalog's service plan names (GET /v1/catalog), read
// once: the catalog is the build's.
var planNames struct {
	once  sync.Once
	names map[string]string
}

func (c *Console) plans(r *http.Request, s *session) map[string]string {
	planNames.once.Do(func() {
		var cat []struct {
			ServicePlans []struct {
				ID   string `json:"servicePlanId"`
				Name string `json:"servicePlanName"`
			} `json:"servicePlans"`
		}
		planNames.names = map[string]string{}
		if _, err := c.get(r.Context(), s, "/v1/catalog", &cat); err != nil {
			c.cfg.Logger.Warn("console: catalog", "err", err)
			return
		}
		for _, p := range cat {
			for _, sp := range p.ServicePlans {
				planNames.names[sp.ID] = sp.Name
			}
		}
	})
	return planNames.names
}

func uintParam(r *http.Request, name string) (uint64, bool) {
	raw := r.URL.Query().Get(name)
	if raw == "" {
		return 0, true
	}
	n, err := strconv.ParseUint(raw, 10, 64)
	return n, err == nil && n > 0
}

// timeTravel is the debugger's page.
func (c *Console) timeTravel(w http.ResponseWriter, r *http.Request, s *session) {
	v := c.newView(r, s, msg("timetravel.title"))
	d := &timeTravelData{}
	v.Data = d
	ctx := r.Context()
	tenant := "/v1/tenants/" + url.PathEscape(v.Tenant)
	d.Base = "/console/t/" + url.PathEscape(v.Tenant) + "/timeTravel"
	// The date-time cursor: the state at that time, then the URL of its
	// version (shareable).
	if at := r.URL.Query().Get("at"); at != "" {
		tm, ok := parseLocalTime(at)
		if !ok {
			c.fail(w, r, "timetravel", v, &problem{Status: http.StatusBadRequest, Field: "at", Detail: v.T("timetravel.badTime")})
			return
		}
		var st struct {
			Version uint64 `json:"version"`
		}
		if _, err := c.get(ctx, s, tenant+"/state?at="+queryEscape(tm.Format(time.RFC3339Nano)), &st); err != nil {
			c.fail(w, r, "timetravel", v, err)
			return
		}
		d.Cmp, _ = uintParam(r, "cmp")
		http.Redirect(w, r, d.Href(st.Version), http.StatusSeeOther)
		return
	}
	head, err := c.head(r, s, tenant)
	if err != nil {
		c.fail(w, r, "timetravel", v, err)
		return
	}
	d.Head = head
	if err := c.ttRead(r, s, tenant, d); err != nil {
		c.fail(w, r, "timetravel", v, err)
		return
	}
	if p := r.URL.Query().Get("blame"); p != "" {
		d.Blame = &ttBlame{Path: p}
		if _, err := c.get(ctx, s, tenant+"/state/blame?version="+strconv.FormatUint(d.V, 10)+"&path="+queryEscape(p), d.Blame); err != nil {
			c.fail(w, r, "timetravel", v, err)
			return
		}
	}
	c.render(w, http.StatusOK, "timetravel", v)
}

// timeTravelFragment is the part of the page a cursor move repaints
// (timeline, state, diffs), for assets/timetravel.js.
func (c *Console) timeTravelFragment(w http.ResponseWriter, r *http.Request, s *session) {
	v := c.newView(r, s, msg("timetravel.title"))
	d := &timeTravelData{}
	v.Data = d
	tenant := "/v1/tenants/" + url.PathEscape(v.Tenant)
	d.Base = "/console/t/" + url.PathEscape(v.Tenant) + "/timeTravel"
	if err := c.ttRead(r, s, tenant, d); err != nil {
		c.fragmentError(w, v, err)
		return
	}
	c.renderFragment(w, "timetravel", "ttLive", v)
}

// timeTravelBlame is the blame panel alone, for assets/timetravel.js.
func (c *Console) timeTravelBlame(w http.ResponseWriter, r *http.Request, s *session) {
	v := c.newView(r, s, msg("timetravel.title"))
	d := &timeTravelData{}
	v.Data = d
	tenant := "/v1/tenants/" + url.PathEscape(v.Tenant)
	d.Base = "/console/t/" + url.PathEscape(v.Tenant) + "/timeTravel"
	n, ok := uintParam(r, "v")
	if !ok || n == 0 {
		c.fragmentError(w, v, &problem{Status: http.StatusBadRequest, Field: "v", Detail: v.T("timetravel.badVersion")})
		return
	}
	d.V = n
	d.Plans = c.plans(r, s)
	d.Blame = &ttBlame{Path: r.URL.Query().Get("path")}
	if _, err := c.get(r.Context(), s, tenant+"/state/blame?version="+strconv.FormatUint(n, 10)+"&path="+queryEscape(d.Blame.Path), d.Blame); err != nil {
		c.fragmentError(w, v, err)
		return
	}
	c.renderFragment(w, "timetravel", "ttBlame", v)
}

// head is the tenant's last version: the last event of GET …/events.
func (c *Console) head(r *http.Request, s *session, tenant string) (uint64, error) {
	var last []ttEvent
	if _, err := c.get(r.Context(), s, tenant+"/events?toVersion="+strconv.FormatUint(1<<63, 10)+"&limit=1", &last); err != nil {
		return 0, err
	}
	if len(last) == 0 {
		return 0, nil
	}
	return last[0].Version, nil
}

// ttRead reads the cursor's window of events, state, change and diff.
func (c *Console) ttRead(r *http.Request, s *session, tenant string, d *timeTravelData) error {
	v, ok := uintParam(r, "v")
	if !ok {
		return &problem{Status: http.StatusBadRequest, Field: "v", Detail: catalog.T(language(r), "timetravel.badVersion")}
	}
	if d.Cmp, ok = uintParam(r, "cmp"); !ok {
		return &problem{Status: http.StatusBadRequest, Field: "cmp", Detail: catalog.T(language(r), "timetravel.badVersion")}
	}
	if v == 0 {
		v = d.Head
	}
	if d.Head > 0 {
		v = min(v, d.Head)
	}
	d.All = r.URL.Query().Get("all") == "1"
	d.Plans = c.plans(r, s)
	evs, more, err := c.ttReadAt(r, s, tenant, d, v)
	if err != nil {
		return err
	}
	if len(evs) == 0 || evs[len(evs)-1].Version < v && !more {
		// Past the head (a fragment does not read it first): the last.
		last := d.Head
		if last == 0 || last >= v {
			if last, err = c.head(r, s, tenant); err != nil {
				return err
			}
		}
		if last == 0 || last >= v {
			return nil // no events
		}
		d.Event, d.State, d.Changes, d.Diff = nil, nil, nil, nil
		if evs, more, err = c.ttReadAt(r, s, tenant, d, last); err != nil || len(evs) == 0 {
			return err
		}
		v = last
	}
	d.V = v
	d.navigate(evs, more)
	d.mark()
	return nil
}

// ttReadAt reads, at once, what the page shows at cursor v: the window
// of events around it, the state, what its event changed and the diff
// with the second cursor. The calls are independent: in parallel, the
// cursor moves in the time of the slowest, not of their sum.
func (c *Console) ttReadAt(r *http.Request, s *session, tenant string, d *timeTravelData, v uint64) ([]ttEvent, bool, error) {
	ctx := r.Context()
	from := uint64(1)
	if v > ttWindow {
		from = v - ttWindow
	}
	var (
		wg    sync.WaitGroup
		errs  [4]error
		evs   []ttEvent
		more  bool
		st    = &ttState{}
		cd    ttDiff
		vs    = strconv.FormatUint(v, 10)
		diffs = d.Cmp > 0 && d.Cmp != v
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		h, err := c.get(ctx, s, tenant+"/events?fromVersion="+strconv.FormatUint(from, 10)+"&limit="+strconv.Itoa(2*ttWindow+1), &evs)
		errs[0] = err
		more = err == nil && h.Get("X-Next-From-Version") != ""
	}()
	go func() {
		defer wg.Done()
		// A page of users unless every one is asked for: those the
		// cursor's event changed come with its diff (mark).
		q := tenant + "/state?version=" + vs
		if !d.All {
			q += "&usersLimit=" + strconv.Itoa(ttRows)
			st.paged = true
		}
		_, errs[1] = c.get(ctx, s, q, st)
	}()
	if v > 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[2] = c.get(ctx, s, tenant+"/state/diff?from="+strconv.FormatUint(v-1, 10)+"&to="+vs, &cd)
		}()
	}
	if diffs {
		d.Diff = &ttDiff{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[3] = c.get(ctx, s, tenant+"/state/diff?from="+strconv.FormatUint(min(v, d.Cmp), 10)+"&to="+strconv.FormatUint(max(v, d.Cmp), 10), d.Diff)
		}()
	}
	wg.Wait()
	if errs[0] != nil {
		return nil, false, errs[0]
	}
	if len(evs) == 0 || evs[len(evs)-1].Version < v && !more {
		return evs, more, nil // past the head: the caller reads again
	}
	for _, err := range errs {
		if err != nil {
			return nil, false, err
		}
	}
	d.State = st
	d.At = st.AsOf.UTC().Format("2006-01-02T15:04:05")
	d.Changes = cd.Changes
	for _, e := range cd.Events {
		if e.Version == v {
			e.Current = true
			d.Event = &e
		}
	}
	return evs, more, nil
}

// navigate groups the window's events by command and finds the cursor's
// neighbours: one event, ten events, one command (the end of the command
// before the cursor's, or of the cursor's or the next one).
func (d *timeTravelData) navigate(evs []ttEvent, more bool) {
	last := evs[len(evs)-1].Version
	if d.Head == 0 && !more {
		d.Head = last
	}
	for i := range evs {
		e := &evs[i]
		e.Current = e.Version == d.V
		if d.Event == nil && e.Current {
			ev := *e
			d.Event = &ev
		}
		n := len(d.Timeline)
		if n == 0 || d.Timeline[n-1].CommandID != e.CommandID || e.CommandID == "" {
			d.Timeline = append(d.Timeline, ttCommand{CommandID: e.CommandID, CorrelationID: e.CorrelationID})
			n++
		}
		g := &d.Timeline[n-1]
		g.Events = append(g.Events, *e)
		g.Current = g.Current || e.Current
	}
	if d.V > 1 {
		d.Prev, d.Back10 = d.V-1, 1
		if d.V > 10 {
			d.Back10 = d.V - 10
		}
	}
	if d.V < last || more {
		d.Next = d.V + 1
		d.Fwd10 = d.V + 10
		if d.Head > 0 {
			d.Fwd10 = min(d.Fwd10, d.Head)
		}
	}
	for i, g := range d.Timeline {
		if !g.Current {
			continue
		}
		first, end := g.Events[0].Version, g.Events[len(g.Events)-1].Version
		if first > 1 {
			d.PrevCmd = first - 1
		}
		switch {
		case d.V < end:
			d.NextCmd = end
		case i+1 < len(d.Timeline):
			nx := d.Timeline[i+1].Events
			d.NextCmd = nx[len(nx)-1].Version
		case d.Next > 0:
			d.NextCmd = d.Next
		}
	}
}

// mark flags what the cursor's event changed, for the state's highlight,
// and bounds the user rows shown. A paged state (the first ttRows users
// and their held data) gets the users and held data the event changed
// from the diff's after sides: they are the whole state's rows.
func (d *timeTravelData) mark() {
	if d.State == nil {
		return
	}
	changed := map[string]ttChange{}
	for _, ch := range d.Changes {
		changed[ch.Entity] = ch
	}
	st := d.State
	if st.paged {
		d.addChanged(changed)
	}
	for i := range st.Products {
		_, st.Products[i].Changed = changed["product:"+st.Products[i].SkuID]
	}
	for i := range st.Subscriptions {
		_, st.Subscriptions[i].Changed = changed["subscription:"+st.Subscriptions[i].ID]
	}
	for i := range st.Groups {
		_, st.Groups[i].Changed = changed["group:"+st.Groups[i].ID]
	}
	for i := range st.HeldData {
		_, st.HeldData[i].Changed = changed["held:"+st.HeldData[i].UserID+"|"+st.HeldData[i].Workload]
	}
	users := st.Users[:0]
	for i, u := range st.Users {
		ch, ok := changed["user:"+u.ID]
		u.Changed = ok
		if ok {
			// Which of its licenses changed: those whose JSON differs.
			var before ttUser
			_ = json.Unmarshal(ch.Before, &before)
			was := map[string]string{}
			for _, l := range before.Licenses {
				b, _ := json.Marshal(l)
				was[l.SkuID] = string(b)
			}
			for j := range u.Licenses {
				b, _ := json.Marshal(u.Licenses[j])
				u.Licenses[j].Changed = was[u.Licenses[j].SkuID] != string(b)
			}
		}
		if d.All || st.paged || i < ttRows || ok {
			users = append(users, u)
		} else {
			st.MoreUsers++
		}
	}
	st.Users = users
	if st.paged {
		st.MoreUsers = max(0, st.UsersTotal-len(st.Users))
		st.MoreHeld = max(0, st.HeldDataTotal-len(st.HeldData))
	}
}

// addChanged adds to a paged state the users and held data that changed
// and that it does not have, in the state's order (by id; held data by
// user and workload).
func (d *timeTravelData) addChanged(changed map[string]ttChange) {
	st := d.State
	users, held := map[string]bool{}, map[string]bool{}
	for _, u := range st.Users {
		users[u.ID] = true
	}
	for _, h := range st.HeldData {
		held[h.UserID+"|"+h.Workload] = true
	}
	addedUsers, addedHeld := false, false
	for _, ch := range d.Changes {
		if ch.Kind == "removed" || len(ch.After) == 0 {
			continue
		}
		kind, id, _ := strings.Cut(ch.Entity, ":")
		switch {
		case kind == "user" && !users[id]:
			var u ttUser
			if json.Unmarshal(ch.After, &u) == nil {
				st.Users, addedUsers = append(st.Users, u), true
			}
		case kind == "held" && !held[id]:
			var h ttHeld
			if json.Unmarshal(ch.After, &h) == nil {
				st.HeldData, addedHeld = append(st.HeldData, h), true
			}
		}
	}
	if addedUsers {
		slices.SortStableFunc(st.Users, func(a, b ttUser) int { return strings.Compare(a.ID, b.ID) })
	}
	if addedHeld {
		slices.SortStableFunc(st.HeldData, func(a, b ttHeld) int {
			if c := strings.Compare(a.UserID, b.UserID); c != 0 {
				return c
			}
			return strings.Compare(a.Workload, b.Workload)
		})
	}
}

// parseLocalTime reads a datetime-local input's value, taken as UTC (with
// or without seconds), or an RFC 3339 time.
func parseLocalTime(s string) (time.Time, bool) {
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02T15:04", time.RFC3339Nano} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// renderFragment writes the template block name of page alone (no
// layout): a part of a page that a script swaps in.
func (c *Console) renderFragment(w http.ResponseWriter, page, name string, v *view) {
	c.execute(w, http.StatusOK, page, name, v)
}

// fragmentError answers a fragment's failure with its status; the script
// then loads the whole page, which shows the problem.
func (c *Console) fragmentError(w http.ResponseWriter, v *view, err error) {
	p, ok := err.(*problem)
	if !ok {
		p = &problem{Status: http.StatusInternalServerError, Detail: v.T("common.internal")}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	fmt.Fprintln(w, p.Detail)
}
