package api

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
)

// The OData query options of the Graph surface. Each route names the options
// it takes; any other query parameter, a repeated one, or an expression it
// cannot evaluate answers 400 naming it: nothing is silently ignored.

const (
	graphDefaultTop = 100
	graphMaxTop     = 999
)

// odataQuery is a request's parsed OData options.
type odataQuery struct {
	top    int        // page size
	after  string     // from $skiptoken: the sort key of the previous page's last row
	fields []string   // $select; nil: every property
	filter userFilter // $filter; nil: every row
	count  bool       // $count=true
}

// parseOData reads the query string of a Graph request. allowed lists the
// options the route takes; props the properties $select may name; entity
// names the type in error messages (e.g. "microsoft.graph.user").
func parseOData(c *gin.Context, entity string, props []string, allowed ...string) (odataQuery, error) {
	q := odataQuery{top: graphDefaultTop}
	values, err := url.ParseQuery(c.Request.URL.RawQuery)
	if err != nil {
		return q, graphErr(http.StatusBadRequest, graphBadRequest, "The query string is malformed: %s.", bounded(err.Error()))
	}
	for _, name := range graphKeys(values) {
		if !slices.Contains(allowed, name) {
			if strings.HasPrefix(name, "$") {
				return q, graphUnsupported("Query option '%s' is not supported on this resource; supported: %s.", bounded(name), strings.Join(allowed, ", "))
			}
			return q, graphUnsupported("Query parameter '%s' is not supported; supported: %s.", bounded(name), strings.Join(allowed, ", "))
		}
		if len(values[name]) != 1 {
			return q, graphErr(http.StatusBadRequest, graphBadRequest, "Query option '%s' was specified more than once, but it can be specified at most once.", bounded(name))
		}
		v := values[name][0]
		switch name {
		case "$top":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > graphMaxTop {
				return q, graphErr(http.StatusBadRequest, graphBadRequest, "Invalid page size specified: '%s'. Must be an integer from 1 to %d ($top).", bounded(v), graphMaxTop)
			}
			q.top = n
		case "$skiptoken":
			b, err := base64.RawURLEncoding.DecodeString(v)
			if err != nil || len(b) < 2 || b[0] != 'k' {
				return q, graphErr(http.StatusBadRequest, graphBadRequest, "$skiptoken '%s' is not one this service gave.", bounded(v))
			}
			q.after = string(b[1:])
		case "$select":
			for _, f := range strings.Split(v, ",") {
				f = strings.TrimSpace(f)
				if !slices.Contains(props, f) {
					return q, graphErr(http.StatusBadRequest, graphSelectBadRequest,
						"Parsing OData Select and Expand failed: Could not find a property named '%s' on type '%s' ($select supports: %s).", bounded(f), entity, strings.Join(props, ", "))
				}
				if !slices.Contains(q.fields, f) {
					q.fields = append(q.fields, f)
				}
			}
		case "$count":
			switch v {
			case "true":
				q.count = true
			case "false":
			default:
				return q, graphErr(http.StatusBadRequest, graphBadRequest, "$count must be true or false, not '%s'.", bounded(v))
			}
		case "$filter":
			f, err := parseUserFilter(v)
			if err != nil {
				return q, err
			}
			q.filter = f
		}
	}
	if q.count && !strings.EqualFold(c.GetHeader("ConsistencyLevel"), "eventual") {
		return q, graphUnsupported("$count=true requires the request header 'ConsistencyLevel: eventual'.")
	}
	return q, nil
}

// skiptoken encodes the sort key of a page's last row.
func skiptoken(last string) string { return base64.RawURLEncoding.EncodeToString([]byte("k" + last)) }

// nextLink is the absolute URL of the page after last: the request's URL
// with $skiptoken replaced.
func nextLink(c *gin.Context, last string) string {
	scheme := "http"
	if c.Request.TLS != nil || strings.EqualFold(c.GetHeader("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	q := c.Request.URL.Query()
	q.Set("$skiptoken", skiptoken(last))
	u := url.URL{Scheme: scheme, Host: c.Request.Host, Path: c.Request.URL.Path, RawQuery: q.Encode()}
	return u.String()
}

// selectFields keeps the properties of $select (all when fields is nil).
func selectFields(obj map[string]any, fields []string) map[string]any {
	if fields == nil {
		return obj
	}
	out := make(map[string]any, len(fields)+1)
	for _, f := range fields {
		out[f] = obj[f]
	}
	if t, ok := obj["@odata.type"]; ok {
		out["@odata.type"] = t
	}
	return out
}

// ---- $filter on users

// userRow is what a $filter on users reads.
type userRow struct {
	id, upn, displayName, userType, usageLocation string
	accountEnabled                                bool
	skus                                          []string // assignedLicenses' skuIds
}

// userFilter decides whether a user is in the answer.
type userFilter func(*userRow) bool

// filterToken is a token of a $filter expression.
type filterToken struct {
	kind byte // 'i' identifier or literal word, 's' string, '(' ')' ',' ':'
	text string
}

func tokenizeFilter(s string) ([]filterToken, error) {
	var out []filterToken
	for i := 0; i < len(s); {
		ch := s[i]
		switch {
		case ch == ' ' || ch == '\t':
			i++
		case ch == '(' || ch == ')' || ch == ',' || ch == ':':
			out = append(out, filterToken{kind: ch, text: string(ch)})
			i++
		case ch == '\'':
			var b strings.Builder
			j := i + 1
			for {
				if j >= len(s) {
					return nil, graphErr(http.StatusBadRequest, graphBadRequest, "Invalid filter clause: unterminated string literal at position %d.", i)
				}
				if s[j] == '\'' {
					if j+1 < len(s) && s[j+1] == '\'' {
						b.WriteByte('\'')
						j += 2
						continue
					}
					break
				}
				b.WriteByte(s[j])
				j++
			}
			out = append(out, filterToken{kind: 's', text: b.String()})
			i = j + 1
		case isFilterWordByte(ch):
			j := i
			for j < len(s) && isFilterWordByte(s[j]) {
				j++
			}
			out = append(out, filterToken{kind: 'i', text: s[i:j]})
			i = j
		default:
			return nil, graphErr(http.StatusBadRequest, graphBadRequest, "Invalid filter clause: unexpected character '%c' at position %d.", ch, i)
		}
	}
	return out, nil
}

func isFilterWordByte(ch byte) bool {
	return ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' ||
		ch == '_' || ch == '$' || ch == '/' || ch == '.' || ch == '-' || ch == '@'
}

type filterParser struct {
	toks  []filterToken
	pos   int
	depth int // the parentheses and nots open around p.pos
}

// maxFilterDepth bounds the nesting of a $filter expression (parentheses
// and not): the parser recurses once per level, and the filter it builds
// once per level for each user, so the depth must not be the URL's length.
const maxFilterDepth = 32

// nest enters one more level of the expression, refusing one too deep;
// the caller leaves it with p.depth--.
func (p *filterParser) nest() error {
	p.depth++
	if p.depth > maxFilterDepth {
		return graphErr(http.StatusBadRequest, graphBadRequest, "Invalid filter clause: the expression nests parentheses and not deeper than %d levels.", maxFilterDepth)
	}
	return nil
}

func (p *filterParser) peek() (filterToken, bool) {
	if p.pos < len(p.toks) {
		return p.toks[p.pos], true
	}
	return filterToken{}, false
}

func (p *filterParser) next() (filterToken, error) {
	t, ok := p.peek()
	if !ok {
		return t, graphErr(http.StatusBadRequest, graphBadRequest, "Invalid filter clause: the expression ends too early.")
	}
	p.pos++
	return t, nil
}

func (p *filterParser) expect(kind byte) error {
	t, err := p.next()
	if err != nil {
		return err
	}
	if t.kind != kind {
		return graphErr(http.StatusBadRequest, graphBadRequest, "Invalid filter clause: expected '%c', found '%s'.", kind, bounded(t.text))
	}
	return nil
}

// keyword reports whether the next token is the word w (case-insensitive).
func (p *filterParser) keyword(w string) bool {
	t, ok := p.peek()
	return ok && t.kind == 'i' && strings.EqualFold(t.text, w)
}

// parseUserFilter compiles a $filter on users. Supported:
//
//	assignedLicenses/any(x:x/skuId eq <guid>)
//	assignedLicenses/$count eq|ne <n>
//	id|userPrincipalName|displayName|userType|usageLocation eq|ne '<text>'
//	accountEnabled eq|ne true|false
//	startswith(displayName|userPrincipalName, '<text>')
//
// joined by and, or, not and parentheses. String comparisons ignore case,
// as Graph's do on directory objects.
func parseUserFilter(s string) (userFilter, error) {
	toks, err := tokenizeFilter(s)
	if err != nil {
		return nil, err
	}
	if len(toks) == 0 {
		return nil, graphErr(http.StatusBadRequest, graphBadRequest, "Invalid filter clause: the expression is empty.")
	}
	p := &filterParser{toks: toks}
	f, err := p.or()
	if err != nil {
		return nil, err
	}
	if t, ok := p.peek(); ok {
		if t.kind == 'i' {
			return nil, graphUnsupported("Unsupported or invalid query filter clause specified for property '%s' of resource 'User'.", bounded(t.text))
		}
		return nil, graphErr(http.StatusBadRequest, graphBadRequest, "Invalid filter clause: unexpected '%s'.", bounded(t.text))
	}
	return f, nil
}

func (p *filterParser) or() (userFilter, error) {
	left, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.keyword("or") {
		p.pos++
		right, err := p.and()
		if err != nil {
			return nil, err
		}
		l := left
		left = func(u *userRow) bool { return l(u) || right(u) }
	}
	return left, nil
}

func (p *filterParser) and() (userFilter, error) {
	left, err := p.unary()
	if err != nil {
		return nil, err
	}
	for p.keyword("and") {
		p.pos++
		right, err := p.unary()
		if err != nil {
			return nil, err
		}
		l := left
		left = func(u *userRow) bool { return l(u) && right(u) }
	}
	return left, nil
}

func (p *filterParser) unary() (userFilter, error) {
	if p.keyword("not") {
		p.pos++
		if err := p.nest(); err != nil {
			return nil, err
		}
		f, err := p.unary()
		p.depth--
		if err != nil {
			return nil, err
		}
		return func(u *userRow) bool { return !f(u) }, nil
	}
	return p.primary()
}

var filterStringProps = map[string]func(*userRow) string{
	"id":                func(u *userRow) string { return u.id },
	"userPrincipalName": func(u *userRow) string { return u.upn },
	"displayName":       func(u *userRow) string { return u.displayName },
	"userType":          func(u *userRow) string { return u.userType },
	"usageLocation":     func(u *userRow) string { return u.usageLocation },
}

func (p *filterParser) primary() (userFilter, error) {
	t, err := p.next()
	if err != nil {
		return nil, err
	}
	switch {
	case t.kind == '(':
		if err := p.nest(); err != nil {
			return nil, err
		}
		f, err := p.or()
		p.depth--
		if err != nil {
			return nil, err
		}
		return f, p.expect(')')
	case t.kind != 'i':
		return nil, graphErr(http.StatusBadRequest, graphBadRequest, "Invalid filter clause: unexpected '%s'.", bounded(t.text))
	case strings.EqualFold(t.text, "startswith"):
		return p.startswith()
	case t.text == "assignedLicenses/any":
		return p.anySku()
	case t.text == "assignedLicenses/$count":
		return p.skuCount()
	}
	if nt, ok := p.peek(); ok && nt.kind == '(' {
		return nil, graphUnsupported("Unsupported function '%s' in $filter: supported are startswith and assignedLicenses/any.", bounded(t.text))
	}
	prop := t.text
	get, isString := filterStringProps[prop]
	if !isString && prop != "accountEnabled" {
		return nil, graphUnsupported("Unsupported or invalid query filter clause specified for property '%s' of resource 'User'.", bounded(prop))
	}
	op, err := p.operator()
	if err != nil {
		return nil, err
	}
	v, err := p.next()
	if err != nil {
		return nil, err
	}
	var match userFilter
	if isString {
		if v.kind != 's' {
			return nil, graphErr(http.StatusBadRequest, graphBadRequest, "Invalid filter clause: '%s' must be compared with a quoted string, not '%s'.", bounded(prop), bounded(v.text))
		}
		want := v.text
		match = func(u *userRow) bool { return strings.EqualFold(get(u), want) }
	} else {
		var want bool
		switch {
		case v.kind == 'i' && v.text == "true":
			want = true
		case v.kind == 'i' && v.text == "false":
		default:
			return nil, graphErr(http.StatusBadRequest, graphBadRequest, "Invalid filter clause: accountEnabled must be compared with true or false, not '%s'.", bounded(v.text))
		}
		match = func(u *userRow) bool { return u.accountEnabled == want }
	}
	if op == "ne" {
		return func(u *userRow) bool { return !match(u) }, nil
	}
	return match, nil
}

// operator reads eq or ne; any other comparison is named as unsupported.
func (p *filterParser) operator() (string, error) {
	t, err := p.next()
	if err != nil {
		return "", err
	}
	switch op := strings.ToLower(t.text); {
	case t.kind == 'i' && (op == "eq" || op == "ne"):
		return op, nil
	case t.kind == 'i' && slices.Contains([]string{"gt", "ge", "lt", "le", "in", "has"}, op):
		return "", graphUnsupported("Unsupported operator '%s' in $filter: supported are eq and ne.", bounded(t.text))
	}
	return "", graphErr(http.StatusBadRequest, graphBadRequest, "Invalid filter clause: expected an operator, found '%s'.", bounded(t.text))
}

func (p *filterParser) startswith() (userFilter, error) {
	if err := p.expect('('); err != nil {
		return nil, err
	}
	t, err := p.next()
	if err != nil {
		return nil, err
	}
	var get func(*userRow) string
	switch t.text {
	case "displayName", "userPrincipalName":
		get = filterStringProps[t.text]
	default:
		return nil, graphUnsupported("Unsupported property '%s' for startswith in $filter: supported are displayName and userPrincipalName.", bounded(t.text))
	}
	if err := p.expect(','); err != nil {
		return nil, err
	}
	v, err := p.next()
	if err != nil {
		return nil, err
	}
	if v.kind != 's' {
		return nil, graphErr(http.StatusBadRequest, graphBadRequest, "Invalid filter clause: startswith needs a quoted string, not '%s'.", bounded(v.text))
	}
	if err := p.expect(')'); err != nil {
		return nil, err
	}
	prefix := strings.ToLower(v.text)
	return func(u *userRow) bool { return strings.HasPrefix(strings.ToLower(get(u)), prefix) }, nil
}

// anySku reads (x:x/skuId eq <guid>) after assignedLicenses/any.
func (p *filterParser) anySku() (userFilter, error) {
	if err := p.expect('('); err != nil {
		return nil, err
	}
	v, err := p.next()
	if err != nil {
		return nil, err
	}
	if v.kind != 'i' {
		return nil, graphErr(http.StatusBadRequest, graphBadRequest, "Invalid filter clause: expected a lambda variable, found '%s'.", bounded(v.text))
	}
	if err := p.expect(':'); err != nil {
		return nil, err
	}
	prop, err := p.next()
	if err != nil {
		return nil, err
	}
	if prop.text != v.text+"/skuId" {
		return nil, graphUnsupported("Unsupported lambda expression on '%s' in $filter: supported is assignedLicenses/any(x:x/skuId eq {skuId}).", bounded(prop.text))
	}
	op, err := p.operator()
	if err != nil {
		return nil, err
	}
	if op != "eq" {
		return nil, graphUnsupported("Unsupported operator '%s' in assignedLicenses/any: supported is eq.", bounded(op))
	}
	sku, err := p.next()
	if err != nil {
		return nil, err
	}
	if sku.kind != 'i' && sku.kind != 's' {
		return nil, graphErr(http.StatusBadRequest, graphBadRequest, "Invalid filter clause: expected a skuId, found '%s'.", bounded(sku.text))
	}
	if err := p.expect(')'); err != nil {
		return nil, err
	}
	want := sku.text
	return func(u *userRow) bool {
		return slices.ContainsFunc(u.skus, func(s string) bool { return strings.EqualFold(s, want) })
	}, nil
}

// skuCount reads eq|ne <n> after assignedLicenses/$count.
func (p *filterParser) skuCount() (userFilter, error) {
	op, err := p.operator()
	if err != nil {
		return nil, err
	}
	v, err := p.next()
	if err != nil {
		return nil, err
	}
	n, convErr := strconv.Atoi(v.text)
	if v.kind != 'i' || convErr != nil || n < 0 {
		return nil, graphErr(http.StatusBadRequest, graphBadRequest, "Invalid filter clause: assignedLicenses/$count must be compared with a number, not '%s'.", bounded(v.text))
	}
	if op == "ne" {
		return func(u *userRow) bool { return len(u.skus) != n }, nil
	}
	return func(u *userRow) bool { return len(u.skus) == n }, nil
}
