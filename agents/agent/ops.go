package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// Operation record states.
const (
	opRunning = "running"
	opDone    = "done"
)

// opRetention is how long a finished, reported operation is remembered, so
// a controller retrying it (within agentapi.DefaultOpTimeout) never makes
// it run twice.
const opRetention = 24 * time.Hour

// opRecord is one spawn or action as persisted in StateDir/ops/<id>.json.
// It is written before the agent answers 202, so a crash afterwards leaves
// a "running" record that the next start reports as failed.
type opRecord struct {
	ID        string              `json:"id"`
	UUID      string              `json:"uuid"`
	Kind      string              `json:"kind"`
	State     string              `json:"state"`
	Reported  bool                `json:"reported"`
	RequestID string              `json:"request_id,omitempty"`
	Started   time.Time           `json:"started"`
	Finished  time.Time           `json:"finished,omitzero"`
	Outcome   *agentapi.Operation `json:"outcome,omitempty"`
}

// opTable holds the operation records in memory and on disk.
type opTable struct {
	dir       string
	mu        sync.Mutex
	recs      map[string]*opRecord
	reporting map[string]bool
}

func loadOps(dir string) (*opTable, error) {
	t := &opTable{dir: dir, recs: map[string]*opRecord{}, reporting: map[string]bool{}}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read operation records: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".tmp-") {
			_ = os.Remove(filepath.Join(dir, name)) // a write torn by a crash
			continue
		}
		if !strings.HasSuffix(name, ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("read operation record %s: %w", name, err)
		}
		var r opRecord
		if err := json.Unmarshal(b, &r); err != nil || r.ID+".json" != name {
			_ = os.Remove(filepath.Join(dir, name))
			continue
		}
		t.recs[r.ID] = &r
	}
	return t, nil
}

func (t *opTable) path(id string) string { return filepath.Join(t.dir, id+".json") }

func (t *opTable) persist(r *opRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return writeFileAtomic(t.path(r.ID), b, 0o600)
}

// create records a new running operation, or returns the existing record
// with the same ID.
func (t *opTable) create(r opRecord) (created bool, existing opRecord, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if old, ok := t.recs[r.ID]; ok {
		return false, *old, nil
	}
	if err := t.persist(&r); err != nil {
		return false, opRecord{}, fmt.Errorf("record operation %s: %w", r.ID, err)
	}
	t.recs[r.ID] = &r
	return true, r, nil
}

func (t *opTable) get(id string) (opRecord, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.recs[id]
	if !ok {
		return opRecord{}, false
	}
	return *r, true
}

// finish stores an operation's outcome.
func (t *opTable) finish(id string, out agentapi.Operation, at time.Time) (opRecord, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.recs[id]
	if !ok {
		return opRecord{}, fmt.Errorf("operation %s unknown", id)
	}
	r.State, r.Outcome, r.Finished = opDone, &out, at
	return *r, t.persist(r)
}

func (t *opTable) markReported(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if r, ok := t.recs[id]; ok && !r.Reported {
		r.Reported = true
		_ = t.persist(r)
	}
}

// claimReport makes the caller the one reporter of id, false when a report
// is already in flight.
func (t *opTable) claimReport(id string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.reporting[id] {
		return false
	}
	t.reporting[id] = true
	return true
}

func (t *opTable) releaseReport(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.reporting, id)
}

// select returns copies of the records keep accepts.
func (t *opTable) selectRecs(keep func(*opRecord) bool) []opRecord {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []opRecord
	for _, r := range t.recs {
		if keep(r) {
			out = append(out, *r)
		}
	}
	return out
}

// prune forgets reported operations that finished before cutoff.
func (t *opTable) prune(cutoff time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, r := range t.recs {
		if r.State == opDone && r.Reported && r.Finished.Before(cutoff) {
			if err := os.Remove(t.path(id)); err == nil || errors.Is(err, os.ErrNotExist) {
				delete(t.recs, id)
			}
		}
	}
}

// work is the body of an operation; it returns the action's output.
type work func(ctx context.Context) (map[string]string, error)

// errCancelledByDestroy is the failure of work a destroy cut short.
var errCancelledByDestroy = fault.Conflictf("The operation was cancelled because the instance is being deleted.")

// submit records and starts an operation and returns at once. A known
// operation ID starts nothing: its work is running or done (then its
// outcome is reported again, which listeners take idempotently).
func (a *agent) submit(opID, uuid, kind, requestID string, fn work) error {
	created, existing, err := a.ops.create(opRecord{
		ID: opID, UUID: uuid, Kind: kind, State: opRunning, RequestID: requestID, Started: time.Now().UTC(),
	})
	if err != nil {
		return fault.Wrap(fault.Internal, err, "record operation")
	}
	if !created {
		if existing.UUID != uuid || existing.Kind != kind {
			return fault.Conflictf("Operation %s was already used for %s of instance %s.", opID, existing.Kind, existing.UUID)
		}
		if existing.State == opDone {
			a.startReport(existing)
		}
		return nil
	}
	ctx, cancel := context.WithCancel(a.ctx)
	l := a.lockFor(uuid)
	l.mu.Lock()
	l.cancel[opID] = cancel
	l.mu.Unlock()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		defer func() {
			l.mu.Lock()
			delete(l.cancel, opID)
			l.mu.Unlock()
			cancel()
		}()
		result, err := a.runLocked(ctx, uuid, fn)
		if err != nil && a.ctx.Err() != nil {
			// The agent is shutting down: the record stays "running" and the
			// next start reports it as interrupted.
			return
		}
		if err != nil && ctx.Err() != nil {
			err = errCancelledByDestroy
		}
		out := agentapi.Operation{ID: opID, UUID: uuid, Kind: kind, Status: agentapi.OpSucceeded, Result: result,
			PowerState: a.powerState(uuid)}
		if err != nil {
			out.Status, out.Error, out.Details = agentapi.OpFailed, fault.Message(err), err.Error()
			a.log.Warn("operation failed", "op_id", opID, "uuid", uuid, "kind", kind, "request_id", requestID, "err", err)
		} else {
			a.log.Info("operation succeeded", "op_id", opID, "uuid", uuid, "kind", kind, "request_id", requestID)
		}
		rec, ferr := a.ops.finish(opID, out, time.Now().UTC())
		if ferr != nil {
			a.log.Error("cannot record operation outcome", "op_id", opID, "err", ferr)
		}
		a.startReport(rec)
	}()
	return nil
}

func (a *agent) runLocked(ctx context.Context, uuid string, fn work) (map[string]string, error) {
	unlock, err := a.lock(ctx, uuid)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return fn(ctx)
}

// powerState reads an instance's power state for a report; an instance that
// is gone (or unreadable) has none.
func (a *agent) powerState(uuid string) int {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(a.ctx), 10*time.Second)
	defer cancel()
	st, err := a.driver.State(ctx, uuid)
	if err != nil {
		return agentapi.PowerNoState
	}
	return st.PowerState
}

// startReport posts an operation's outcome in the background.
func (a *agent) startReport(rec opRecord) {
	if rec.Outcome == nil || a.ctx.Err() != nil {
		return
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.report(rec)
	}()
}

// report posts an outcome with retries for a couple of minutes; what is
// still undelivered then is retried on every heartbeat tick.
func (a *agent) report(rec opRecord) {
	if !a.ops.claimReport(rec.ID) {
		return
	}
	defer a.ops.releaseReport(rec.ID)
	post := func() error {
		cred := a.ctl.credential()
		err := a.ctl.call(a.ctx, http.MethodPost, agentapi.PathOperations+rec.ID, rec.RequestID, rec.Outcome, nil)
		switch {
		case err == nil:
			return nil
		case fault.Is(err, fault.Unauthorized):
			a.rejoin(a.ctx, cred)
			return err
		case !retryable(err):
			return backoff.Permanent(err)
		}
		return err
	}
	err := backoff.Retry(post, newBackoff(a.ctx, 2*time.Minute))
	switch {
	case err == nil:
		a.ops.markReported(rec.ID)
	case !retryable(err):
		// The controller will never take it (it no longer knows the
		// instance, say); keeping it would only retry forever.
		a.log.Warn("controller rejected an operation report", "op_id", rec.ID, "err", err)
		a.ops.markReported(rec.ID)
	default:
		if a.ctx.Err() == nil {
			a.log.Warn("operation report not delivered yet", "op_id", rec.ID, "err", err)
		}
	}
}

// reconcileInterrupted turns operations a previous run left running into
// failures (the instance becomes ERROR at the controller) and re-sends
// outcomes that were never delivered.
func (a *agent) reconcileInterrupted() {
	for _, r := range a.ops.selectRecs(func(r *opRecord) bool { return r.State == opRunning }) {
		out := agentapi.Operation{
			ID: r.ID, UUID: r.UUID, Kind: r.Kind, Status: agentapi.OpFailed,
			Error:      "The compute host's agent restarted during the operation; its outcome is unknown.",
			PowerState: a.powerState(r.UUID),
		}
		a.log.Warn("operation interrupted by an agent restart", "op_id", r.ID, "uuid", r.UUID, "kind", r.Kind)
		if _, err := a.ops.finish(r.ID, out, time.Now().UTC()); err != nil {
			a.log.Error("cannot record operation outcome", "op_id", r.ID, "err", err)
		}
	}
	a.retryReports()
}

// retryReports re-sends every finished, undelivered outcome.
func (a *agent) retryReports() {
	for _, r := range a.ops.selectRecs(func(r *opRecord) bool { return r.State == opDone && !r.Reported }) {
		a.startReport(r)
	}
}
