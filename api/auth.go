package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"

	"github.com/seatledger/seatledger/domain"
)

// ctxState is the gin context key of a request's requestState.
const ctxState = "seatledger.request"

// requestState is what the middlewares learn about a request: one value in
// the gin context, where a key per fact boxed each value (an allocation per
// string or actor) and grew gin's map.
type requestState struct {
	id       string       // the request id
	logger   *slog.Logger // the server's logger (loggerOf adds the id)
	actor    domain.Actor // who authenticated
	tokenTID string       // the token's tenant; empty for the operator
	tenant   string       // the tenant of a tenant-scoped request
	graph    bool         // a request to the Graph surface (/v1.0)
	checked  uint64       // the tenant's version requireRoles or requireActiveUser checked
}

// stateOf returns the request's state, or nil before the requestID
// middleware ran.
func stateOf(c *gin.Context) *requestState {
	if v, ok := c.Get(ctxState); ok {
		st, _ := v.(*requestState)
		return st
	}
	return nil
}

// stateFor returns the request's state, making it if no middleware did.
func stateFor(c *gin.Context) *requestState {
	st := stateOf(c)
	if st == nil {
		st = &requestState{}
		c.Set(ctxState, st)
	}
	return st
}

// Claims are the claims of a seatledger token: sub (the acting user), tid
// (the tenant) and exp.
type Claims struct {
	TenantID string `json:"tid"`
	jwt.RegisteredClaims
}

// NewToken signs an HS256 token for user of tenant, valid for ttl.
func NewToken(secret []byte, tenant, user string, ttl time.Duration, now time.Time) (string, error) {
	if len(secret) == 0 {
		return "", errors.New("api: empty JWT secret")
	}
	claims := Claims{TenantID: tenant, RegisteredClaims: jwt.RegisteredClaims{
		Subject:   user,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
}

type authenticator struct {
	secret   []byte
	operator [32]byte
	hasOp    bool
	parser   *jwt.Parser
	clock    func() time.Time

	mu       sync.Mutex
	verified map[string]verified // tokens whose signature was checked
}

func newAuthenticator(secret []byte, operatorToken string, clock func() time.Time) *authenticator {
	if clock == nil {
		clock = time.Now
	}
	a := &authenticator{secret: secret, clock: clock, verified: map[string]verified{}}
	if operatorToken != "" {
		a.operator = sha256.Sum256([]byte(operatorToken))
		a.hasOp = true
	}
	a.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(clock),
		jwt.WithLeeway(5*time.Second),
	)
	return a
}

// principal is who a request authenticated as.
type principal struct {
	actor    domain.Actor
	tenantID string // the token's tenant; empty for the operator
}

func unauthenticated(detail, wwwAuth string) *HTTPError {
	h := http.Header{}
	h.Set("WWW-Authenticate", wwwAuth)
	return &HTTPError{Status: http.StatusUnauthorized, Code: CodeUnauthenticated, Detail: detail, Format: detail, Header: h}
}

func (a *authenticator) authenticate(header string) (principal, error) {
	const realm = `Bearer realm="seatledger"`
	if header == "" {
		return principal{}, unauthenticated("send Authorization: Bearer <token>", realm)
	}
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return principal{}, unauthenticated("the Authorization header must be: Bearer <token>", realm)
	}
	token = strings.TrimSpace(token)
	// The cache first: it holds only tokens that were compared with the
	// operator token and were not it (remember runs after that check, and
	// the operator token never changes), so a token found there is the same
	// principal as before; the operator check hashes the whole token with
	// SHA-256, most of the cost of a cached token's request.
	if len(a.secret) != 0 {
		if p, ok := a.cached(token); ok {
			return p, nil
		}
	}
	if a.hasOp {
		sum := sha256.Sum256([]byte(token))
		if subtle.ConstantTimeCompare(sum[:], a.operator[:]) == 1 {
			return principal{actor: domain.Actor{Operator: true}}, nil
		}
	}
	invalidToken := realm + `, error="invalid_token"`
	if len(a.secret) == 0 {
		return principal{}, unauthenticated("the token is not valid", invalidToken)
	}
	var claims Claims
	parsed, err := a.parser.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return a.secret, nil })
	if err == nil {
		err = strictToken(parsed)
	}
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return principal{}, unauthenticated("the token has expired", invalidToken)
		}
		return principal{}, unauthenticated("the token is not valid", invalidToken)
	}
	if !domain.ValidID(claims.Subject) || !domain.ValidID(claims.TenantID) {
		return principal{}, unauthenticated("the token must carry sub and tid claims", invalidToken)
	}
	p := principal{actor: domain.Actor{UserID: claims.Subject}, tenantID: claims.TenantID}
	if claims.ExpiresAt != nil {
		a.remember(token, p, claims.ExpiresAt.Time)
	}
	return p, nil
}

// errTokenForm is a token whose signature holds but whose form this server
// refuses (strictToken).
var errTokenForm = errors.New("token form refused")

// strictToken refuses what the JWT library accepts but a strict reading of
// RFC 7515/7519 does not: a "crit" header (it names extensions the
// recipient must understand, and this server understands none; RFC 7515
// §4.1.11), and time claims that are not JSON numbers ("exp":"1767225600"
// is a NumericDate only to a lenient parser; RFC 7519 §2).
func strictToken(t *jwt.Token) error {
	if _, ok := t.Header["crit"]; ok {
		return errTokenForm
	}
	_, rest, _ := strings.Cut(t.Raw, ".")
	payload, _, _ := strings.Cut(rest, ".")
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return errTokenForm
	}
	var times struct{ Exp, Nbf, Iat json.RawMessage }
	if err := json.Unmarshal(raw, &times); err != nil {
		return errTokenForm
	}
	for _, v := range []json.RawMessage{times.Exp, times.Nbf, times.Iat} {
		if len(v) > 0 && !(v[0] == '-' || '0' <= v[0] && v[0] <= '9') {
			return errTokenForm
		}
	}
	return nil
}

// verifiedCap bounds the tokens remembered as verified.
const verifiedCap = 10_000

type verified struct {
	p   principal
	exp time.Time
}

// cached returns the principal of a token verified before and not expired
// since: clients send the same token with every request, and checking its
// HMAC and decoding its JSON each time is most of the cost of auth.
func (a *authenticator) cached(token string) (principal, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	v, ok := a.verified[token]
	if !ok {
		return principal{}, false
	}
	if !a.clock().Before(v.exp) {
		delete(a.verified, token)
		return principal{}, false
	}
	return v.p, true
}

func (a *authenticator) remember(token string, p principal, exp time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.verified) >= verifiedCap {
		clear(a.verified)
	}
	a.verified[token] = verified{p, exp}
}

// authenticate is the middleware that checks the bearer token.
func (s *Server) authenticate(c *gin.Context) {
	p, err := s.auth.authenticate(c.GetHeader("Authorization"))
	if err != nil {
		WriteProblem(c, err)
		return
	}
	st := stateFor(c)
	st.actor, st.tokenTID = p.actor, p.tenantID
	c.Next()
}

// operatorOnly admits the operator token only.
func (s *Server) operatorOnly(c *gin.Context) {
	if a := ActorOf(c); !a.Operator {
		WriteProblem(c, &domain.Error{Code: domain.CodeNotAllowedForRole, Detail: "only the operator may do this"})
		return
	}
	c.Next()
}

// tenantScope admits a token of the path's tenant, or the operator; any
// other tenant's token gets the same 404 as a missing tenant.
func (s *Server) tenantScope(c *gin.Context) {
	t := c.Param("t")
	st := stateFor(c)
	if !st.actor.Operator && st.tokenTID != t {
		WriteProblem(c, TenantNotFound(t))
		return
	}
	if !domain.ValidID(t) {
		WriteProblem(c, invalidRequest("tenantId", "tenant id %q is not valid: use 1 to 128 characters of A-Z a-z 0-9 . _ @ - (not . or ..)", bounded(t)))
		return
	}
	st.tenant = t
	c.Next()
}

// ActorOf returns the authenticated actor of a request.
func ActorOf(c *gin.Context) domain.Actor {
	if st := stateOf(c); st != nil {
		return st.actor
	}
	return domain.Actor{}
}

// TenantOf returns the tenant of a tenant-scoped request (checked against
// the token).
func TenantOf(c *gin.Context) string {
	if st := stateOf(c); st != nil {
		return st.tenant
	}
	return ""
}

// RequestIDOf returns the request id of a request.
func RequestIDOf(c *gin.Context) string {
	if st := stateOf(c); st != nil {
		return st.id
	}
	return ""
}
