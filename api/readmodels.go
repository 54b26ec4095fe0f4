package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/seatledger/seatledger/domain"
)

// ReadModels is the operator's handle on the read models, served at GET
// /v1/projections, POST /v1/projections/rebuild and POST
// /v1/projections/verify. The binary implements it over the projections
// and rebuild packages; api answers what it returns as JSON and its errors as problems.
type ReadModels interface {
	// Status is each projection's state: position, lag, status.
	Status() any
	// Rebuild rebuilds every read model into a fresh prefix and swaps to
	// it (tenant ""), or one tenant's read models in place, calling
	// progress with each step. A rebuild refused because another runs
	// returns an error marked with RebuildRunning.
	Rebuild(ctx context.Context, tenant string, progress func(step any)) (result any, err error)
	// Verify folds every tenant from the event store and compares the
	// result with the read models, calling progress about every
	// second while it runs.
	Verify(ctx context.Context, progress func(step any)) (report any, err error)
}

// CodeReplayRunning answers a rebuild asked for while another runs (409).
const CodeReplayRunning domain.ErrorCode = "replay_running"

// ErrRebuildRunning is, through errors.Is, the error of a rebuild refused
// because another runs: see RebuildRunning.
var ErrRebuildRunning = errors.New("another rebuild is running")

// RebuildRunning marks err, keeping its message, as a rebuild refused
// because another runs: POST /v1/projections/rebuild answers it 409
// replay_running.
func RebuildRunning(err error) error { return rebuildRunning{err} }

type rebuildRunning struct{ error }

func (e rebuildRunning) Unwrap() error      { return e.error }
func (rebuildRunning) Is(target error) bool { return target == ErrRebuildRunning }

// projections answers GET /v1/projections.
func (s *Server) projections(c *gin.Context) {
	writeJSON(c, http.StatusOK, "application/json", s.cfg.ReadModels.Status())
}

// rebuild answers POST /v1/projections/rebuild[?tenant=T]; with Accept:
// application/x-ndjson it streams a line per step, then the result (or the
// error) as the last line.
func (s *Server) rebuild(c *gin.Context) {
	tenant := c.Query("tenant")
	if tenant != "" && !domain.ValidID(tenant) {
		WriteProblem(c, &domain.Error{Code: domain.CodeInvalidRequest, Field: "tenant", Detail: "tenant is not a valid id"})
		return
	}
	longOperation(c, func(progress func(any)) (any, error) {
		return s.cfg.ReadModels.Rebuild(c.Request.Context(), tenant, progress)
	}, func(err error) error {
		if errors.Is(err, ErrRebuildRunning) {
			return httpErrorf(http.StatusConflict, CodeReplayRunning, "",
				"%s; wait for it to finish (GET /v1/projections shows its progress) and try again", err.Error())
		}
		return err
	})
}

// verify answers POST /v1/projections/verify; with Accept:
// application/x-ndjson it streams a progress line about every second, then
// the report (or the error) as the last line.
func (s *Server) verify(c *gin.Context) {
	longOperation(c, func(progress func(any)) (any, error) {
		return s.cfg.ReadModels.Verify(c.Request.Context(), progress)
	}, func(err error) error { return err })
}

// longOperation runs op, which may outlast the server's write timeout. With
// Accept: application/x-ndjson the answer is 200 at once and a line
// {"progress":…} per step op reports, then {"result":…} or {"error":"…"};
// otherwise the result as JSON, or the error (through problem) as a
// problem, when op is done.
func longOperation(c *gin.Context, op func(progress func(any)) (any, error), problem func(error) error) {
	_ = http.NewResponseController(c.Writer).SetWriteDeadline(time.Time{})
	stream := strings.Contains(c.GetHeader("Accept"), "application/x-ndjson")
	var mu sync.Mutex // progress may be called from several goroutines
	line := func(v any) {
		mu.Lock()
		defer mu.Unlock()
		b, _ := json.Marshal(v)
		_, _ = c.Writer.Write(append(b, '\n'))
		c.Writer.Flush()
	}
	if stream {
		c.Header("Content-Type", "application/x-ndjson")
		c.Status(http.StatusOK)
		c.Writer.Flush()
	}
	res, err := op(func(step any) {
		if stream {
			line(map[string]any{"progress": step})
		}
	})
	switch {
	case err != nil && stream:
		line(map[string]any{"error": err.Error()})
	case err != nil:
		WriteProblem(c, problem(err))
	case stream:
		line(map[string]any{"result": res})
	default:
		writeJSON(c, http.StatusOK, "application/json", res)
	}
}
