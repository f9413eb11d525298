package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// credential is what a join gives the agent, persisted in
// StateDir/credential.json (0600) so a restart needs no join token.
type credential struct {
	AgentID          string `json:"agent_id"`
	Secret           string `json:"secret"`
	ControllerURL    string `json:"controller_url"`
	Hostname         string `json:"hostname"`
	HeartbeatSeconds int    `json:"heartbeat_seconds"`

	key []byte
}

const credentialFile = "credential.json"

func loadCredential(dir string) (*credential, error) {
	b, err := os.ReadFile(filepath.Join(dir, credentialFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read credential: %w", err)
	}
	var c credential
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("parse credential: %w", err)
	}
	if c.key, err = agentapi.DecodeSecret(c.Secret); err != nil || c.AgentID == "" {
		return nil, fmt.Errorf("credential in %s is damaged", dir)
	}
	return &c, nil
}

func saveCredential(dir string, c *credential) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, credentialFile), b, 0o600)
}

// writeFileAtomic writes through a temporary file and a rename, so a crash
// never leaves a torn file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if err := f.Chmod(perm); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// controller is the agent's signed client to the control plane.
type controller struct {
	base string
	hc   *http.Client // JSON calls
	bulk *http.Client // image transfers: no overall timeout, the context bounds them
	cred atomic.Pointer[credential]
}

func newController(base string, hc *http.Client) *controller {
	bulk := &http.Client{Transport: hc.Transport, Jar: hc.Jar, CheckRedirect: hc.CheckRedirect}
	return &controller{base: strings.TrimRight(base, "/"), hc: hc, bulk: bulk}
}

func (c *controller) credential() *credential { return c.cred.Load() }

// join exchanges the join token for a credential.
func (c *controller) join(ctx context.Context, jr agentapi.JoinRequest) (*agentapi.JoinResponse, error) {
	body, err := json.Marshal(jr)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+agentapi.PathJoin, bytes.NewReader(body))
	if err != nil {
		return nil, fault.Wrap(fault.Invalid, err, "bad controller URL")
	}
	req.Header.Set("Content-Type", "application/json")
	var out agentapi.JoinResponse
	if err := c.send(c.hc, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// call makes a signed JSON call; in and out may be nil.
func (c *controller) call(ctx context.Context, method, path, requestID string, in, out any) error {
	cred := c.credential()
	if cred == nil {
		return fault.Unauthorizedf("no credential yet")
	}
	var body []byte
	var rd io.Reader = http.NoBody
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return fault.Wrap(fault.Invalid, err, "bad controller URL")
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if requestID != "" {
		req.Header.Set(agentapi.HeaderRequestID, requestID)
	}
	agentapi.Sign(req, cred.AgentID, cred.key, body, time.Now())
	return c.send(c.hc, req, out)
}

// send performs req and maps a failure to a fault: an unreachable
// controller is Unavailable, an answer keeps the kind the controller named.
func (c *controller) send(hc *http.Client, req *http.Request, out any) error {
	resp, err := hc.Do(req)
	if err != nil {
		return fault.Wrap(fault.Unavailable, err, "The controller is unreachable.")
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return answerError(resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fault.Wrap(fault.Unavailable, err, "The controller sent a malformed answer.")
	}
	return nil
}

// answerError reads an agentapi.Error answer into a fault of its kind.
func answerError(resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e agentapi.Error
	if json.Unmarshal(raw, &e) != nil || e.Kind == "" {
		e = agentapi.Error{Kind: fault.Unavailable.String(), Message: "The controller answered " + resp.Status + "."}
		switch {
		case resp.StatusCode == http.StatusUnauthorized:
			e.Kind = fault.Unauthorized.String()
		case resp.StatusCode == http.StatusNotFound:
			e.Kind = fault.NotFound.String()
		}
	}
	k, _ := fault.ParseKind(e.Kind)
	return fault.Wrap(k, fmt.Errorf("controller answered %s", resp.Status), e.Message)
}

// retryable reports whether a failed call to the controller may succeed
// later as it is; Invalid, NotFound and Conflict answers will not.
func retryable(err error) bool {
	switch fault.KindOf(err) {
	case fault.Invalid, fault.NotFound, fault.Conflict:
		return false
	}
	return true
}

// newBackoff is the retry schedule for reports to the controller: quick at
// first, then every 30 s, for at most maxElapsed (0: until ctx ends).
func newBackoff(ctx context.Context, maxElapsed time.Duration) backoff.BackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 200 * time.Millisecond
	b.MaxInterval = 30 * time.Second
	b.MaxElapsedTime = maxElapsed
	return backoff.WithContext(b, ctx)
}

// establishCredential loads the stored credential and proves it with a
// heartbeat, joining (again) when there is none, when it belongs to another
// controller or hostname, or when the controller refuses it. An
// unreachable controller is retried until ctx ends, since agents often
// start before their controller.
func (a *agent) establishCredential(ctx context.Context) error {
	cred, err := loadCredential(a.cfg.StateDir)
	if err != nil {
		a.log.Warn("ignoring stored credential", "err", err)
		cred = nil
	}
	if cred != nil && (cred.ControllerURL != a.ctl.base || cred.Hostname != a.cfg.Hostname) {
		a.log.Info("stored credential is for another controller or hostname; joining again")
		cred = nil
	}
	op := func() error {
		if cred != nil {
			a.ctl.cred.Store(cred)
			err := a.heartbeat(ctx)
			switch {
			case err == nil:
				return nil
			case fault.Is(err, fault.Unavailable):
				return err // the controller is away: try again
			case !fault.Is(err, fault.Unauthorized):
				// The credential was not refused (the driver failed, say);
				// the heartbeat loop keeps trying.
				a.log.Warn("first heartbeat failed", "err", err)
				return nil
			}
			a.log.Warn("controller refused the stored credential; joining again")
			cred = nil
		}
		c, err := a.join(ctx)
		if err != nil {
			if fault.Is(err, fault.Unauthorized) || fault.Is(err, fault.Invalid) {
				return backoff.Permanent(err)
			}
			return err
		}
		cred = c
		return nil
	}
	notify := func(err error, next time.Duration) {
		a.log.Warn("controller not reachable yet", "err", err, "retry_in", next)
	}
	if err := backoff.RetryNotify(op, newBackoff(ctx, 0), notify); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("agent: join %s: %w", a.ctl.base, err)
	}
	return nil
}

// join registers with the join token and persists the new credential.
func (a *agent) join(ctx context.Context) (*credential, error) {
	if a.cfg.JoinToken == "" {
		return nil, fault.Unauthorizedf("the agent has no valid credential and no join token")
	}
	inv, err := a.driver.Inventory(ctx)
	if err != nil {
		return nil, fmt.Errorf("read inventory: %w", err)
	}
	resp, err := a.ctl.join(ctx, agentapi.JoinRequest{
		JoinToken: a.cfg.JoinToken, Hostname: a.cfg.Hostname, URL: a.url, Inventory: inv,
	})
	if err != nil {
		return nil, err
	}
	key, err := agentapi.DecodeSecret(resp.Secret)
	if err != nil || resp.AgentID == "" {
		return nil, fault.New(fault.Unavailable, "the controller sent an unusable credential")
	}
	c := &credential{
		AgentID: resp.AgentID, Secret: resp.Secret, ControllerURL: a.ctl.base,
		Hostname: a.cfg.Hostname, HeartbeatSeconds: resp.HeartbeatSeconds, key: key,
	}
	if err := saveCredential(a.cfg.StateDir, c); err != nil {
		return nil, fmt.Errorf("save credential: %w", err)
	}
	a.ctl.cred.Store(c)
	a.log.Info("joined controller", "agent_id", c.AgentID)
	return c, nil
}

// rejoin replaces a credential the controller refused, once at a time.
func (a *agent) rejoin(ctx context.Context, refused *credential) {
	a.rejoinMu.Lock()
	defer a.rejoinMu.Unlock()
	if a.ctl.credential() != refused {
		return // another caller already rejoined
	}
	if _, err := a.join(ctx); err != nil {
		a.log.Error("controller refuses the credential and the join failed", "err", err)
	}
}
