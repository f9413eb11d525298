// Package agenttest runs a real node agent (agents/agent) on 127.0.0.1:0
// for tests of the control plane, with the fake driver unless told
// otherwise, and stops it when the test ends.
package agenttest

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nimbus-cloud/nimbus/agents/agent"
	"github.com/nimbus-cloud/nimbus/agents/fake"
)

// Options configures Start. Zero values take the defaults.
type Options struct {
	// Hostname defaults to "node1".
	Hostname string
	// Driver defaults to a fake.New(Fake).
	Driver agent.Driver
	// Fake configures the default fake driver.
	Fake fake.Config
	// HeartbeatInterval defaults to 100 ms.
	HeartbeatInterval time.Duration
	// StateDir defaults to a fresh t.TempDir().
	StateDir string
	// Logger defaults to one that discards.
	Logger *slog.Logger
	// Listener defaults to a new one on 127.0.0.1:0.
	Listener net.Listener
}

// Agent is a running agent.
type Agent struct {
	// ID is the agent (host) ID the controller gave it.
	ID string
	// URL is where the agent API listens.
	URL      string
	StateDir string
	Driver   agent.Driver
	// Fake is the driver when it is the default fake, else nil.
	Fake *fake.Driver

	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// Start runs an agent that joins controllerURL with joinToken and returns
// once it serves. It fails the test if the agent cannot start within 10 s.
func Start(t testing.TB, controllerURL, joinToken string, o Options) *Agent {
	t.Helper()
	if o.Hostname == "" {
		o.Hostname = "node1"
	}
	a := &Agent{Driver: o.Driver, StateDir: o.StateDir, done: make(chan error, 1)}
	if a.Driver == nil {
		a.Fake = fake.New(o.Fake)
		a.Driver = a.Fake
	}
	if a.StateDir == "" {
		a.StateDir = t.TempDir()
	}
	if o.HeartbeatInterval == 0 {
		o.HeartbeatInterval = 100 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ln := o.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatalf("agenttest: listen: %v", err)
		}
	}
	ready := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	cfg := agent.Config{
		ControllerURL: controllerURL, JoinToken: joinToken, Hostname: o.Hostname, Listener: ln,
		StateDir: a.StateDir, Driver: a.Driver, HeartbeatInterval: o.HeartbeatInterval, Logger: o.Logger,
		OnReady: func(id, url string) {
			a.ID, a.URL = id, url
			close(ready)
		},
	}
	go func() { a.done <- agent.Run(ctx, cfg) }()
	t.Cleanup(func() { _ = a.Stop() })
	select {
	case <-ready:
	case err := <-a.done:
		a.done <- err // for Stop
		t.Fatalf("agenttest: agent stopped before it was ready: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatalf("agenttest: agent not ready after 10 s")
	}
	return a
}

// Stop stops the agent, waits for it and returns what Run returned;
// calling it again returns the same.
func (a *Agent) Stop() error {
	a.once.Do(func() {
		a.cancel()
		a.err = <-a.done
	})
	return a.err
}
