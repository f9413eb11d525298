package compute

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// Console is a remote console's access URL.
type Console struct {
	Protocol string // "vnc"
	Type     string // "novnc"
	URL      string
}

// ConsoleTarget is what a consumed console token grants: the VNC stream of
// one instance on one host, which the console proxy dials through the
// hosts registry.
type ConsoleTarget struct {
	InstanceUUID string
	HostID       string
	Port         int
}

// consoleTokenPath is the websocket path noVNC's page is pointed at,
// relative to the cloud's public root.
const consoleTokenPath = "console/websockify?token="

// CreateConsole creates a console token for active server id and returns
// the URL of the noVNC page that opens it: ConsoleURL?path=<websocket
// path with the token>. The token is 128 random bits, stored only hashed,
// bound to the server's current host and VNC port, single-use and
// expiring after ConsoleTokenTTL. Only protocol "vnc" with type "novnc"
// (or "xvpvnc") exists. Kinds: NotFound, Forbidden, Invalid, Conflict (not
// active).
func (s *Service) CreateConsole(ctx context.Context, id, protocol, typ string) (*Console, error) {
	srv, _, err := s.serverFor(ctx, id, "os_compute_api:os-remote-consoles")
	if err != nil {
		return nil, err
	}
	if protocol != "vnc" {
		return nil, fault.Invalidf("Unsupported console protocol %s; this cloud offers vnc.", protocol)
	}
	if typ != "novnc" && typ != "xvpvnc" {
		return nil, fault.Invalidf("Invalid console type %s", typ)
	}
	if srv.VMState != VMActive || srv.HostID == "" {
		return nil, fault.Conflictf("Instance %s is not ready", srv.ID)
	}
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, fault.Wrap(fault.Internal, err, "generate console token")
	}
	tok := base64.RawURLEncoding.EncodeToString(raw[:])
	now := s.now()
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		// Expired tokens go with each new one, so the table stays small.
		if _, err := tx.ExecContext(ctx, `DELETE FROM console_tokens WHERE expires_at < ?`, fmtTime(now)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO console_tokens (token_hash, instance_uuid, host_id, port, console_type,
			expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`, hashToken(tok), srv.ID, srv.HostID, srv.VNCPort, typ,
			fmtTime(now.Add(s.cfg.ConsoleTokenTTL)), fmtTime(now))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store console token: %w", err)
	}
	u := s.cfg.ConsoleURL + "?path=" + url.QueryEscape(consoleTokenPath+tok)
	return &Console{Protocol: protocol, Type: typ, URL: u}, nil
}

func hashToken(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// errBadConsoleToken is the one answer to every unusable token, so a
// caller learns nothing about which check failed.
func errBadConsoleToken() error {
	return fault.Unauthorizedf("The console token is invalid or has expired.")
}

// ConsumeConsoleToken redeems a console token for the console proxy: the
// token is deleted whatever the outcome (single use), and is honoured only
// before it expires and while its server is still active on the same host
// (and VNC port) it was issued for. It needs no credentials: the token is
// the credential. The proxy then dials the stream with
// hosts.Registry.Client(ctx, t.HostID) and Client.DialVNC(ctx,
// t.InstanceUUID). Kinds: Unauthorized.
func (s *Service) ConsumeConsoleToken(ctx context.Context, token string) (*ConsoleTarget, error) {
	if token == "" {
		return nil, errBadConsoleToken()
	}
	var t ConsoleTarget
	var expires string
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		h := hashToken(token)
		err := tx.QueryRowContext(ctx, `SELECT instance_uuid, host_id, port, expires_at FROM console_tokens WHERE token_hash = ?`, h).
			Scan(&t.InstanceUUID, &t.HostID, &t.Port, &expires)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM console_tokens WHERE token_hash = ?`, h)
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errBadConsoleToken()
	}
	if err != nil {
		return nil, fmt.Errorf("redeem console token: %w", err)
	}
	if !s.now().Before(parseTime(expires)) {
		return nil, errBadConsoleToken()
	}
	srv, err := s.st.getServer(ctx, s.st.db, t.InstanceUUID)
	if err != nil || srv.VMState != VMActive || srv.HostID != t.HostID || (t.Port > 0 && srv.VNCPort != t.Port) {
		return nil, errBadConsoleToken()
	}
	return &t, nil
}

// ConsoleOutput returns the last length lines of server id's serial
// console (all of it when length <= 0). Kinds: NotFound, Forbidden,
// Conflict (no host yet), Unavailable (agent unreachable).
func (s *Service) ConsoleOutput(ctx context.Context, id string, length int) (string, error) {
	srv, _, err := s.serverFor(ctx, id, "os_compute_api:os-console-output")
	if err != nil {
		return "", err
	}
	if srv.HostID == "" || srv.VMState == VMBuilding {
		return "", fault.Conflictf("Instance %s is not ready", srv.ID)
	}
	if length < 0 {
		length = 0
	}
	var out string
	err = s.callAgent(ctx, srv.HostID, func(c agentClient) error {
		var err error
		out, err = c.ConsoleLog(ctx, srv.ID, length)
		return err
	})
	if fault.Is(err, fault.NotFound) {
		return "", fault.Conflictf("Instance %s is not ready", srv.ID)
	}
	if err != nil && fault.KindOf(err) == fault.Internal {
		return "", fault.Wrap(fault.Unavailable, err, "The compute host of the instance could not be reached.")
	}
	return out, err
}
