package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/seatledger/seatledger/commands"
	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventcodec"
)

// CommandAnswer is the answer of every command endpoint.
type CommandAnswer struct {
	// Version is the tenant stream's version after the command.
	Version uint64 `json:"version"`
	// Events are the events the command appended (JSON envelopes).
	Events []json.RawMessage `json:"events"`
	// ID names the resource a create made (tenant, user, group, subscription).
	ID string `json:"id,omitempty"`
	// RedirectURL is the vendor's install page (apps/{sku}/install).
	RedirectURL string `json:"redirectUrl,omitempty"`
}

// A commandRequest is a command route's request once read and checked: its
// Idempotency-Key, its raw body, its actor, and its path parameters, each a
// valid id.
type commandRequest struct {
	c     *gin.Context
	key   string // "" : none
	body  []byte
	actor domain.Actor
}

// tenant is the path's tenant (checked against the token by tenantScope).
func (r *commandRequest) tenant() string { return TenantOf(r.c) }

// param is a path parameter: a valid id, command checked it.
func (r *commandRequest) param(name string) string { return r.c.Param(name) }

// newID names a resource of kind in tenant that the client did not name:
// derived from the Idempotency-Key when there is one (a retry names the same
// resource), else random.
func (r *commandRequest) newID(kind, tenant string) string {
	return newID(kind, tenant, r.actor, r.key)
}

// A commandCall is what a command endpoint makes of its request: the domain
// command, and what its answer needs.
type commandCall struct {
	cmd domain.Command
	// tenant is the tenant the command runs on when it is not the path's
	// (creating a tenant).
	tenant string
	// created is the id of the resource the command creates: it is answered
	// as "id", with 201 Created instead of 200.
	created string
	// fields maps the field a domain error names to its JSON path in the
	// request's body, where the two differ (nil: they do not).
	fields func(string) string
}

// noBody is the body of a command route that takes none: an empty body or
// {} is accepted, anything else refused.
type noBody struct{}

// pathFields names the path parameters of command routes as problems name
// them (docs/API.md: "the path parameter (userId, skuId, …)").
var pathFields = map[string]string{"u": "userId", "g": "groupId", "s": "subscriptionId", "sku": "skuId"}

// command returns the handler of a command route, made from toCommand, a
// typed function that turns a decoded body into a domain command, in the
// manner of Watermill's cqrs.NewCommandHandler: what every command route
// repeats lives here once, and an endpoint is only what it makes of its body.
// For each request the handler
//
//  1. refuses a query string (commands take none), reads the
//     Idempotency-Key and the body (at most MaxBodyBytes, gzip undone), and
//     decodes the body strictly into a new Body; a Body other than noBody
//     is required;
//  2. checks that every path parameter but the tenant (tenantScope checks
//     it) is a valid id, in the order of the path;
//  3. calls toCommand, which may refuse the request with an error;
//  4. stamps the command's metadata, runs it and answers a CommandAnswer:
//     200, or 201 Created with the id of what it created.
//
// An error at any step is answered as a problem, in the request's terms
// (inTermsOfRequest). toCommand may be called by several requests at once.
func command[Body any](s *Server, toCommand func(r *commandRequest, body *Body) (commandCall, error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		body := new(Body)
		_, bodyless := any(body).(*noBody)
		r, err := readCommand(c, body, !bodyless)
		if err != nil {
			WriteProblem(c, err)
			return
		}
		call, err := toCommand(r, body)
		if err != nil {
			WriteProblem(c, err)
			return
		}
		s.runCommand(r, call)
	}
}

// readCommand reads and checks what every command route starts from (steps
// 1 and 2 of command), decoding the body into v.
func readCommand(c *gin.Context, v any, required bool) (*commandRequest, error) {
	if err := checkQuery(c); err != nil {
		return nil, err
	}
	key, err := idempotencyKey(c)
	if err != nil {
		return nil, err
	}
	body, err := readBody(c)
	if err != nil {
		return nil, err
	}
	if err := decodeBody(body, v, required); err != nil {
		return nil, err
	}
	for _, p := range c.Params {
		if field, ok := pathFields[p.Key]; ok {
			if _, err := pathID(c, p.Key, field); err != nil {
				return nil, err
			}
		}
	}
	return &commandRequest{c: c, body: body, key: key, actor: ActorOf(c)}, nil
}

// runCommand stamps call's command, runs it and answers.
func (s *Server) runCommand(r *commandRequest, call commandCall) {
	c := r.c
	tenant, status := r.tenant(), http.StatusOK
	if call.tenant != "" {
		tenant = call.tenant
	}
	if call.created != "" {
		status = http.StatusCreated
	}
	stamp(c, call.cmd, tenant, r.actor, r.key, r.body)
	res, err := s.cfg.Commands.Handle(c.Request.Context(), call.cmd)
	if err != nil {
		WriteProblem(c, inTermsOfRequest(err, r.key, call.fields))
		return
	}
	ans, err := answer(res)
	if err != nil {
		WriteProblem(c, err)
		return
	}
	ans.ID = call.created
	if res.Replayed {
		c.Writer.Header().Set(HeaderReplayed, "true")
	}
	size := 96 + len(ans.ID) + len(ans.RedirectURL)
	for _, e := range ans.Events {
		size += len(e) + 1
	}
	b, err := ans.appendJSON(make([]byte, 0, size))
	if err != nil {
		WriteProblem(c, err)
		return
	}
	// One value shared by every answer (Header.Set makes a slice each time);
	// net/http and gin only read it, and Set or Add by a later writer
	// replace or grow a copy.
	c.Writer.Header()["Content-Type"] = jsonContentType
	c.Writer.WriteHeader(status)
	_, _ = c.Writer.Write(b)
}

// stamp fills the metadata of a command a request sends: the tenant, the
// actor, the request id as correlation id, and the command id. With an
// Idempotency-Key the command id is derived from the key and the request's
// hash is set: the tenant remembers it (domain: Tenant.Commands) to answer
// a retry, and to refuse the key with another request. Without one, the id
// is random.
func stamp(c *gin.Context, cmd domain.Command, tenant string, actor domain.Actor, key string, body []byte) {
	m := domain.Meta(cmd)
	m.TenantID = tenant
	m.Actor = actor
	m.CorrelationID = RequestIDOf(c)
	if key != "" {
		m.RequestHash = RequestHash(c.Request.Method, c.Request.URL.Path, body)
		m.CommandID = CommandID(tenant, actor, key)
	} else {
		m.CommandID = newID("command", "", domain.Actor{}, "")
	}
}

var jsonContentType = []string{"application/json"}

// appendJSON appends the answer as writeJSON would encode it, without
// re-scanning the events: they are the compact JSON the event encoder wrote
// (re-validating and compacting them was a tenth of a command's CPU time).
func (a CommandAnswer) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"version":`...)
	b = strconv.AppendUint(b, a.Version, 10)
	b = append(b, `,"events":[`...)
	for i, e := range a.Events {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e...)
	}
	b = append(b, ']')
	for _, f := range [...]struct{ name, value string }{{"id", a.ID}, {"redirectUrl", a.RedirectURL}} {
		if f.value == "" {
			continue
		}
		v, err := eventcodec.MarshalNoEscapeHTML(f.value)
		if err != nil {
			return nil, err
		}
		b = append(append(append(append(b, `,"`...), f.name...), `":`...), v...)
	}
	return append(b, "}\n"...), nil
}

// inTermsOfRequest restates a domain error in the request's terms: the
// field as the body's JSON path (fields; nil: the same), and a reused
// Idempotency-Key named as the client sent it (the domain knows only the
// command id derived from it).
func inTermsOfRequest(err error, key string, fields func(string) string) error {
	var de *domain.Error
	if !errors.As(err, &de) {
		return err
	}
	out := *de // a copy: domain errors may be shared values
	switch {
	case de.Code == domain.CodeIdempotencyKeyReused:
		reused := domain.Errorf(de.Code, HeaderIdempotencyKey, "Idempotency-Key %q was already used for another request (another method, path or body); "+
			"send a new key for a new request", bounded(key))
		out.Field, out.Detail, out.Format, out.Args = reused.Field, reused.Detail, reused.Format, reused.Args
	case fields != nil && de.Field != "":
		out.Field = fields(de.Field)
	default:
		return err
	}
	return &out
}

func answer(res commands.Result) (CommandAnswer, error) {
	ans := CommandAnswer{Version: res.Version, Events: make([]json.RawMessage, 0, len(res.Events))}
	for i, e := range res.Events {
		var b []byte
		if i < len(res.Raw) {
			b = res.Raw[i]
		}
		if b == nil {
			var err error
			if b, err = domain.EncodeEvent(e); err != nil {
				return CommandAnswer{}, err
			}
		}
		ans.Events = append(ans.Events, b)
		if p, ok := e.Payload.(domain.AppInstalled); ok {
			ans.RedirectURL = p.RedirectURL
		}
	}
	return ans, nil
}
