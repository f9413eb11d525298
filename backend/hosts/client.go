package hosts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/rest"
)

// Client is a signed HTTP client to one host's agent. Every call carries
// the caller's request ID (rest.RequestID) as X-Openstack-Request-Id and,
// for long work, the operation ID that makes a retry harmless. Errors are
// *fault.Error: the agent's answers keep their kind, and an agent that
// cannot be reached is Unavailable.
type Client struct {
	hostID string
	base   string
	secret []byte
	hc     *http.Client
}

func newClient(hostID, base string, secret []byte, hc *http.Client) *Client {
	return &Client{hostID: hostID, base: strings.TrimRight(base, "/"), secret: secret, hc: hc}
}

// HostID is the host this client talks to.
func (c *Client) HostID() string { return c.hostID }

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// request builds a signed request; body is the exact bytes sent.
func (c *Client) request(ctx context.Context, method, path string, q url.Values, opID string, body []byte) (*http.Request, error) {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader = http.NoBody
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "build agent request")
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if id := rest.RequestID(ctx); id != "" {
		req.Header.Set(agentapi.HeaderRequestID, id)
	}
	if opID != "" {
		req.Header.Set(agentapi.HeaderOperationID, opID)
	}
	agentapi.Sign(req, c.hostID, c.secret, body, time.Now())
	return req, nil
}

// do sends a signed JSON call and decodes a 2xx answer into out (if not nil).
func (c *Client) do(ctx context.Context, method, path string, q url.Values, opID string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fault.Wrap(fault.Internal, err, "encode agent request")
		}
	}
	req, err := c.request(ctx, method, path, q, opID, body)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return unreachable(c.hostID, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return agentError(c.hostID, resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fault.Wrap(fault.Unavailable, err, "The compute host's agent sent a malformed answer.")
	}
	return nil
}

func unreachable(hostID string, err error) error {
	return fault.Wrap(fault.Unavailable, fmt.Errorf("host %s: %w", hostID, err), "The compute host's agent is unreachable.")
}

// agentError turns a non-2xx answer into a fault of the kind the agent
// named. An agent refusing our signature is Unavailable, not Unauthorized:
// the user's credentials are fine, the host's are out of step.
func agentError(hostID string, resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var e agentapi.Error
	if json.Unmarshal(raw, &e) != nil || e.Kind == "" {
		e = agentapi.Error{Kind: fault.Unavailable.String(), Message: "The compute host's agent answered " + resp.Status + "."}
		if resp.StatusCode == http.StatusNotFound {
			e.Kind = fault.NotFound.String()
		}
	}
	cause := fmt.Errorf("host %s answered %s: %s", hostID, resp.Status, e.Message)
	k, _ := fault.ParseKind(e.Kind)
	if k == fault.Unauthorized {
		return fault.Wrap(fault.Unavailable, cause, "The compute host's agent refused the control plane's credential.")
	}
	return fault.Wrap(k, cause, e.Message)
}

func instancePath(uuid string) string {
	return agentapi.PathInstances + "/" + url.PathEscape(uuid)
}

// Spawn asks the agent to build the instance; the outcome arrives through
// Listener.Operation under opID. A retry with the same opID, or a spawn of
// an instance that already exists, does no second build. Kinds: Invalid,
// Conflict, Unavailable, Internal.
func (c *Client) Spawn(ctx context.Context, opID string, spec agentapi.InstanceSpec) error {
	return c.do(ctx, http.MethodPut, instancePath(spec.UUID), nil, opID, spec, nil)
}

// Destroy removes the instance and everything the host holds for it; a
// missing instance is success. Kinds: Invalid, Unavailable, Internal.
func (c *Client) Destroy(ctx context.Context, opID, uuid string) error {
	return c.do(ctx, http.MethodDelete, instancePath(uuid), nil, opID, nil, nil)
}

// Act asks the agent to perform an action; the outcome arrives through
// Listener.Operation under opID. Kinds: Invalid, NotFound, Conflict,
// Unavailable, Internal.
func (c *Client) Act(ctx context.Context, opID, uuid string, a agentapi.Action) error {
	return c.do(ctx, http.MethodPost, instancePath(uuid)+agentapi.SubActions, nil, opID, a, nil)
}

// State returns the instance as the host sees it. Kinds: NotFound,
// Unavailable, Internal.
func (c *Client) State(ctx context.Context, uuid string) (*agentapi.InstanceState, error) {
	var st agentapi.InstanceState
	if err := c.do(ctx, http.MethodGet, instancePath(uuid), nil, "", nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// List returns every Nimbus instance on the host. Kinds: Unavailable, Internal.
func (c *Client) List(ctx context.Context) ([]agentapi.InstanceState, error) {
	var out []agentapi.InstanceState
	if err := c.do(ctx, http.MethodGet, agentapi.PathInstances, nil, "", nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// ConsoleLog returns the last lines of the instance's serial console, all
// of it when lines <= 0. Kinds: NotFound, Unavailable, Internal.
func (c *Client) ConsoleLog(ctx context.Context, uuid string, lines int) (string, error) {
	var q url.Values
	if lines > 0 {
		q = url.Values{"length": {strconv.Itoa(lines)}}
	}
	var out agentapi.ConsoleLog
	if err := c.do(ctx, http.MethodGet, instancePath(uuid)+agentapi.SubConsoleLog, q, "", nil, &out); err != nil {
		return "", err
	}
	return out.Output, nil
}

// Health returns the agent's identity and inventory. Kinds: Unavailable, Internal.
func (c *Client) Health(ctx context.Context) (*agentapi.Health, error) {
	var h agentapi.Health
	if err := c.do(ctx, http.MethodGet, agentapi.PathHealth, nil, "", nil, &h); err != nil {
		return nil, err
	}
	return &h, nil
}

// DialVNC opens the agent's websocket tunnel to the instance's VNC server
// and returns it as a plain byte stream, for the console proxy to pump.
// Kinds: NotFound, Conflict (no VNC server), Unavailable, Internal.
func (c *Client) DialVNC(ctx context.Context, uuid string) (io.ReadWriteCloser, error) {
	req, err := c.request(ctx, http.MethodGet, instancePath(uuid)+agentapi.SubVNC, nil, "", nil)
	if err != nil {
		return nil, err
	}
	u := *req.URL
	switch u.Scheme {
	case "https":
		u.Scheme = "wss"
	default:
		u.Scheme = "ws"
	}
	d := websocket.Dialer{HandshakeTimeout: 15 * time.Second}
	if t, ok := c.hc.Transport.(*http.Transport); ok {
		d.NetDialContext = t.DialContext
		if t.TLSClientConfig != nil {
			d.TLSClientConfig = t.TLSClientConfig.Clone()
		}
	}
	h := http.Header{}
	for _, k := range []string{agentapi.HeaderAgentID, agentapi.HeaderTimestamp, agentapi.HeaderNonce,
		agentapi.HeaderSignature, agentapi.HeaderRequestID} {
		if v := req.Header.Get(k); v != "" {
			h.Set(k, v)
		}
	}
	conn, resp, err := d.DialContext(ctx, u.String(), h)
	if err != nil {
		if resp != nil {
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusSwitchingProtocols {
				return nil, agentError(c.hostID, resp)
			}
		}
		return nil, unreachable(c.hostID, err)
	}
	return &wsStream{conn: conn}, nil
}

// wsStream presents a websocket as a byte stream: binary messages in,
// each Write one binary message out.
type wsStream struct {
	conn *websocket.Conn
	rd   io.Reader
	wmu  sync.Mutex
	once sync.Once
}

func (s *wsStream) Read(p []byte) (int, error) {
	for {
		if s.rd == nil {
			_, r, err := s.conn.NextReader()
			if err != nil {
				if websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway) {
					return 0, io.EOF
				}
				return 0, err
			}
			s.rd = r
		}
		n, err := s.rd.Read(p)
		if errors.Is(err, io.EOF) {
			s.rd = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (s *wsStream) Write(p []byte) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.conn.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (s *wsStream) Close() error {
	var err error
	s.once.Do(func() {
		s.wmu.Lock()
		_ = s.conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		s.wmu.Unlock()
		err = s.conn.Close()
	})
	return err
}
