package api

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/history"
)

// The history routes: the handlers that serve history.Service, the audit
// log, raw events and time travel, under a tenant (/v1/tenants/:t):
//
//	GET audit?since&until&actor&user&sku&type&cursor&limit&order=asc|desc
//	GET events?fromVersion|cursor|toVersion&limit
//	GET state?at=<RFC 3339>|version=N[&usersLimit=N][&users=id,…]
//	GET state/diff?from=…&to=…   (times or versions)
//	GET state/blame?at|version&path
type historyHandlers struct{ svc *history.Service }

func queryTime(c *gin.Context, name string) (time.Time, error) {
	v := c.Query(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, invalidRequest(name, "%s=%q is not an RFC 3339 time such as 2026-03-01T14:03:00Z", name, bounded(v))
	}
	return t, nil
}

func queryInt(c *gin.Context, name string, def, max int) (int, error) {
	v := c.Query(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return 0, invalidRequest(name, "%s must be an integer from 1 to %d, not %q", name, max, bounded(v))
	}
	return n, nil
}

// point reads a time or a version: "2026-03-01T14:03:00Z" or "42".
func point(c *gin.Context, name, value string) (history.Point, error) {
	if n, err := strconv.ParseUint(value, 10, 64); err == nil {
		return history.Point{Version: n, Field: name}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, value)
	if err != nil {
		return history.Point{}, invalidRequest(name, "%s=%q is neither a version number nor an RFC 3339 time", name, bounded(value))
	}
	return history.Point{Time: t, Field: name}, nil
}

// exists checks the query parameters against the route's, then that the
// tenant exists.
func (h historyHandlers) exists(c *gin.Context, params ...string) (string, bool) {
	if err := checkQuery(c, params...); err != nil {
		WriteProblem(c, err)
		return "", false
	}
	t := TenantOf(c)
	head, err := h.svc.Head(c.Request.Context(), t)
	if err != nil {
		WriteProblem(c, err)
		return "", false
	}
	if head == 0 {
		WriteProblem(c, TenantNotFound(t))
		return "", false
	}
	return t, true
}

func (h historyHandlers) audit(c *gin.Context) {
	t, ok := h.exists(c, "since", "until", "actor", "user", "sku", "type", "cursor", "limit", "order")
	if !ok {
		return
	}
	var f history.Filter
	var err error
	if f.Since, err = queryTime(c, "since"); err == nil {
		f.Until, err = queryTime(c, "until")
	}
	limit := 100
	if err == nil {
		limit, err = queryInt(c, "limit", 100, 500)
	}
	order := c.DefaultQuery("order", "asc")
	if err == nil && order != "asc" && order != "desc" {
		err = invalidRequest("order", "order must be asc or desc")
	}
	if err != nil {
		WriteProblem(c, err)
		return
	}
	f.Actor, f.User, f.Sku, f.Type = c.Query("actor"), c.Query("user"), c.Query("sku"), c.Query("type")
	page, err := h.svc.Audit(c.Request.Context(), t, f, c.Query("cursor"), order == "desc", limit)
	if err != nil {
		WriteProblem(c, err)
		return
	}
	cursorHeaders(c, page.NextCursor, page.PrevCursor)
	c.Header("X-Tenant-Version", strconv.FormatUint(page.Head, 10))
	writeJSON(c, http.StatusOK, "application/json", page.Records)
}

// setNextCursor marks an answer as one page of a list: X-Next-Cursor and
// a Link header with rel="next" to the same path with query q (which
// carries the cursor). Every paged answer (lists and the paged members of
// a detail) says "there is more" this way.
func setNextCursor(c *gin.Context, next string, q url.Values) {
	c.Header("X-Next-Cursor", next)
	c.Writer.Header().Add("Link", "<"+(&url.URL{Path: c.Request.URL.Path, RawQuery: q.Encode()}).String()+`>; rel="next"`)
}

// cursorHeaders sets X-Next-Cursor / X-Prev-Cursor and a Link header.
func cursorHeaders(c *gin.Context, next, prev string) {
	link := func(cur, rel string) string {
		q := c.Request.URL.Query()
		q.Set("cursor", cur)
		if rel == "prev" {
			if q.Get("order") == "desc" {
				q.Set("order", "asc")
			} else {
				q.Set("order", "desc")
			}
		}
		return "<" + (&url.URL{Path: c.Request.URL.Path, RawQuery: q.Encode()}).String() + `>; rel="` + rel + `"`
	}
	var links []string
	if next != "" {
		c.Header("X-Next-Cursor", next)
		links = append(links, link(next, "next"))
	}
	if prev != "" {
		c.Header("X-Prev-Cursor", prev)
		links = append(links, link(prev, "prev"))
	}
	for _, l := range links {
		c.Writer.Header().Add("Link", l)
	}
}

// events answers raw envelopes from fromVersion (or cursor: the same
// number, as X-Next-Cursor gives it, so events page like every list), or
// the page that ends at toVersion (a timeline scrolled back). Every page
// says where the pages before and after it start: X-Prev-To-Version and
// X-Next-From-Version, with Link rel="prev" and rel="next".
func (h historyHandlers) events(c *gin.Context) {
	t, ok := h.exists(c, "fromVersion", "cursor", "toVersion", "limit")
	if !ok {
		return
	}
	version := func(name string) (uint64, bool) {
		v := c.Query(name)
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n < 1 {
			WriteProblem(c, invalidRequest(name, "%s must be a version number from 1, not %q", name, bounded(v)))
			return 0, false
		}
		return n, true
	}
	from := uint64(1)
	name, v := "fromVersion", c.Query("fromVersion")
	if cur := c.Query("cursor"); cur != "" {
		if v != "" {
			WriteProblem(c, invalidRequest("cursor", "give fromVersion or cursor, not both"))
			return
		}
		name, v = "cursor", cur
	}
	backward := c.Query("toVersion") != ""
	if backward && v != "" {
		WriteProblem(c, invalidRequest("toVersion", "give toVersion or %s, not both", name))
		return
	}
	if v != "" {
		if from, ok = version(name); !ok {
			return
		}
	}
	limit, err := queryInt(c, "limit", 100, 1000)
	if err != nil {
		WriteProblem(c, err)
		return
	}
	ctx := c.Request.Context()
	var evs []json.RawMessage
	var next uint64 // the first version of the next page (0: none)
	if backward {
		to, ok := version("toVersion")
		if !ok {
			return
		}
		evs, from, err = h.svc.EventsBefore(ctx, t, to, limit)
		if err == nil && from > 0 {
			last := from + uint64(len(evs)) - 1
			head, herr := h.svc.Head(ctx, t)
			if err = herr; err == nil && last < head {
				next = last + 1
			}
		}
	} else {
		evs, next, err = h.svc.Events(ctx, t, from, limit)
	}
	if err != nil {
		WriteProblem(c, err)
		return
	}
	if from > 1 {
		p := strconv.FormatUint(from-1, 10)
		c.Header("X-Prev-To-Version", p)
		q := c.Request.URL.Query()
		q.Del("fromVersion")
		q.Del("cursor")
		q.Set("toVersion", p)
		c.Writer.Header().Add("Link", "<"+(&url.URL{Path: c.Request.URL.Path, RawQuery: q.Encode()}).String()+`>; rel="prev"`)
	}
	if next > 0 {
		n := strconv.FormatUint(next, 10)
		c.Header("X-Next-From-Version", n)
		q := c.Request.URL.Query()
		q.Del("fromVersion")
		q.Del("toVersion")
		q.Set("cursor", n)
		setNextCursor(c, n, q)
	}
	writeJSON(c, http.StatusOK, "application/json", evs)
}

// statePoint resolves /state's at or version (neither: the head) to a
// version of an existing tenant; params are the route's other parameters.
func (h historyHandlers) statePoint(c *gin.Context, params ...string) (string, uint64, bool) {
	t, ok := h.exists(c, append([]string{"at", "version"}, params...)...)
	if !ok {
		return "", 0, false
	}
	at, version := c.Query("at"), c.Query("version")
	var p history.Point
	switch {
	case at != "" && version != "":
		WriteProblem(c, invalidRequest("at", "give at or version, not both"))
		return "", 0, false
	case version != "":
		n, err := strconv.ParseUint(version, 10, 64)
		if err != nil || n < 1 {
			WriteProblem(c, invalidRequest("version", "version must be a version number from 1"))
			return "", 0, false
		}
		p.Version = n
	case at != "":
		tm, err := queryTime(c, "at")
		if err != nil {
			WriteProblem(c, err)
			return "", 0, false
		}
		p.Time = tm
	}
	v, err := h.svc.Resolve(c.Request.Context(), t, p)
	if err != nil {
		WriteProblem(c, err)
		return "", 0, false
	}
	if v == 0 {
		WriteProblem(c, domain.Errorf(domain.CodeNotFound, "", "the tenant did not exist yet at %s", at))
		return "", 0, false
	}
	return t, v, true
}

// maxStateUsers bounds /state's users= list.
const maxStateUsers = 100

// state answers the whole state at a point or, with usersLimit or users,
// a page of its users (the first usersLimit in the state's order and
// those named) with their held data and the whole state's counts.
func (h historyHandlers) state(c *gin.Context) {
	// Checked before the tenant is read, like blame's path.
	var page history.UserPage
	_, limited := c.GetQuery("usersLimit")
	named, hasUsers := c.GetQuery("users")
	paged := limited || hasUsers
	if paged {
		err := checkQuery(c, "at", "version", "usersLimit", "users")
		if err == nil && limited {
			raw := c.Query("usersLimit")
			page.Limit, err = strconv.Atoi(raw)
			if err != nil || page.Limit < 0 || page.Limit > 1000 {
				err = invalidRequest("usersLimit", "usersLimit must be an integer from 0 to 1000, not %q", bounded(raw))
			}
		}
		if err == nil && hasUsers {
			page.IDs = strings.Split(named, ",")
			if len(page.IDs) > maxStateUsers {
				err = invalidRequest("users", "users names at most %d users, not %d", maxStateUsers, len(page.IDs))
			} else if slices.Contains(page.IDs, "") {
				err = invalidRequest("users", "users is a comma-separated list of user ids, without empty ones: %q", bounded(named))
			}
		}
		if err != nil {
			WriteProblem(c, err)
			return
		}
	}
	t, v, ok := h.statePoint(c, "usersLimit", "users")
	if !ok {
		return
	}
	st, err := h.svc.StateAt(c.Request.Context(), t, v)
	if err != nil {
		WriteProblem(c, err)
		return
	}
	if paged {
		writeJSON(c, http.StatusOK, "application/json", history.RenderPage(h.svc.Catalog, st, page))
		return
	}
	writeJSON(c, http.StatusOK, "application/json", history.Render(h.svc.Catalog, st))
}

// blame answers which event last changed each value of the state at a
// point (the same at or version as state), or the values at or under path.
func (h historyHandlers) blame(c *gin.Context) {
	path, given := c.GetQuery("path")
	if given {
		// Checked before the tenant is read: a malformed path is the
		// request's fault whatever the tenant holds.
		err := checkQuery(c, "at", "version", "path")
		if err == nil {
			_, err = h.svc.ParseBlamePath(path)
		}
		if err != nil {
			WriteProblem(c, err)
			return
		}
	}
	t, v, ok := h.statePoint(c, "path")
	if !ok {
		return
	}
	b, err := h.svc.BlameAt(c.Request.Context(), t, v, path)
	if err != nil {
		WriteProblem(c, err)
		return
	}
	writeJSON(c, http.StatusOK, "application/json", b)
}

func (h historyHandlers) diff(c *gin.Context) {
	t, ok := h.exists(c, "from", "to")
	if !ok {
		return
	}
	ctx := c.Request.Context()
	var vs [2]uint64
	for i, name := range []string{"from", "to"} {
		raw := c.Query(name)
		if raw == "" {
			WriteProblem(c, invalidRequest(name, "%s is required (a version number or an RFC 3339 time)", name))
			return
		}
		p, err := point(c, name, raw)
		if err == nil && (p.Version > 0 || !p.Time.IsZero()) {
			vs[i], err = h.svc.Resolve(ctx, t, p)
		}
		// Else version 0 (or the zero time): the tenant before its first
		// event, where a time before it resolves to too; not the head,
		// which is what a zero Point means to Resolve.
		if err != nil {
			WriteProblem(c, err)
			return
		}
	}
	d, err := h.svc.DiffBetween(ctx, t, vs[0], vs[1])
	if err != nil {
		WriteProblem(c, err)
		return
	}
	writeJSON(c, http.StatusOK, "application/json", d)
}
