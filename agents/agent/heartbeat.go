package agent

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// interval is the heartbeat period: the configured one, else the one the
// controller asked for at join, else 10 s.
func (a *agent) interval() time.Duration {
	if a.cfg.HeartbeatInterval > 0 {
		return a.cfg.HeartbeatInterval
	}
	if c := a.ctl.credential(); c != nil && c.HeartbeatSeconds > 0 {
		return time.Duration(c.HeartbeatSeconds) * time.Second
	}
	return 10 * time.Second
}

func (a *agent) heartbeatLoop() {
	defer a.wg.Done()
	t := time.NewTicker(a.interval())
	defer t.Stop()
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-t.C:
		}
		cred := a.ctl.credential()
		err := a.heartbeat(a.ctx)
		switch {
		case err == nil:
		case a.ctx.Err() != nil:
			return
		case fault.Is(err, fault.Unauthorized):
			a.log.Warn("controller refused the credential; joining again")
			a.rejoin(a.ctx, cred)
		default:
			a.log.Warn("heartbeat failed", "err", err)
		}
		a.retryReports()
		a.ops.prune(time.Now().Add(-opRetention))
	}
}

// heartbeat sends inventory and instance states and destroys the orphans
// the controller names. A driver that cannot list its instances sends no
// heartbeat at all: a host that cannot see its guests should turn down,
// not report them gone.
func (a *agent) heartbeat(ctx context.Context) error {
	inv, err := a.driver.Inventory(ctx)
	if err != nil {
		return fmt.Errorf("read inventory: %w", err)
	}
	insts, err := a.driver.List(ctx)
	if err != nil {
		return fmt.Errorf("list instances: %w", err)
	}
	cred := a.ctl.credential()
	hb := agentapi.Heartbeat{AgentID: cred.AgentID, Inventory: inv, Instances: insts, Time: time.Now().UTC(), URL: a.url}
	var resp agentapi.HeartbeatResponse
	if err := a.ctl.call(ctx, http.MethodPost, agentapi.PathHeartbeat, "", hb, &resp); err != nil {
		return err
	}
	for _, uuid := range resp.Orphans {
		// Only what this heartbeat reported, and never an instance with work
		// in flight: its build may have started after the controller looked.
		if !slices.ContainsFunc(insts, func(s agentapi.InstanceState) bool { return s.UUID == uuid }) || a.busy(uuid) {
			continue
		}
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			a.log.Warn("destroying orphan instance the controller does not know", "uuid", uuid)
			if err := a.destroy(a.ctx, uuid); err != nil && a.ctx.Err() == nil {
				a.log.Error("destroy orphan instance", "uuid", uuid, "err", err)
			}
		}()
	}
	return nil
}

// maxPendingEvents bounds the events held while the controller is away;
// the oldest go first, since heartbeats carry the current states anyway.
const maxPendingEvents = 10000

// forwardEvents posts the driver's lifecycle events to the controller in
// batches as they arrive.
func (a *agent) forwardEvents() {
	defer a.wg.Done()
	events := a.driver.Events()
	var pending []agentapi.Event
	for {
		if len(pending) == 0 {
			select {
			case <-a.ctx.Done():
				return
			case ev, ok := <-events:
				if !ok {
					return
				}
				pending = append(pending, ev)
			}
		}
	drain:
		for len(pending) < 500 {
			select {
			case ev, ok := <-events:
				if !ok {
					break drain
				}
				pending = append(pending, ev)
			default:
				break drain
			}
		}
		if len(pending) > maxPendingEvents {
			pending = pending[len(pending)-maxPendingEvents:]
		}
		post := func() error {
			cred := a.ctl.credential()
			err := a.ctl.call(a.ctx, http.MethodPost, agentapi.PathEvents, "",
				agentapi.Events{AgentID: cred.AgentID, Events: pending}, nil)
			if fault.Is(err, fault.Unauthorized) {
				a.rejoin(a.ctx, cred)
			} else if err != nil && !retryable(err) {
				return backoff.Permanent(err)
			}
			return err
		}
		if err := backoff.Retry(post, newBackoff(a.ctx, 30*time.Second)); err != nil {
			if a.ctx.Err() != nil {
				return
			}
			a.log.Warn("dropping lifecycle events the controller did not take", "count", len(pending), "err", err)
		}
		pending = nil
	}
}
