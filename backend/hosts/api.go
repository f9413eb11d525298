package hosts

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/rest"
)

// Body limits of the agent-facing API. A heartbeat lists every instance on
// its host, so it gets the most room.
const (
	maxJoinBody      = 1 << 20
	maxHeartbeatBody = 8 << 20
	maxEventsBody    = 4 << 20
	maxOpBody        = 1 << 20
	maxMetadataBody  = 64 << 10
)

// Handler is the controller side of the agent API, to be mounted at
// "/agents" (the paths of agentapi without that prefix). Every route but the
// join verifies the agent's signature, so an unsigned, replayed or wrongly
// signed request gets 401 and nothing else.
func (r *Registry) Handler() http.Handler {
	m := chi.NewRouter()
	m.Post(strings.TrimPrefix(agentapi.PathJoin, "/agents"), r.handleJoin)
	m.Post(strings.TrimPrefix(agentapi.PathHeartbeat, "/agents"), r.handleHeartbeat)
	m.Post(strings.TrimPrefix(agentapi.PathEvents, "/agents"), r.handleEvents)
	m.Post(strings.TrimPrefix(agentapi.PathOperations, "/agents")+"{id}", r.handleOperation)
	m.Get(strings.TrimPrefix(agentapi.PathImages, "/agents")+"{id}/file", r.handleImageGet)
	m.Put(strings.TrimPrefix(agentapi.PathImages, "/agents")+"{id}/file", r.handleImagePut)
	m.Post(strings.TrimPrefix(agentapi.PathMetadata, "/agents"), r.handleMetadata)
	m.NotFound(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, fault.NotFoundf("No such agent API path."))
	})
	m.MethodNotAllowed(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, fault.Invalidf("Method not allowed."))
	})
	return m
}

func writeError(w http.ResponseWriter, err error) {
	rest.JSON(w, fault.Status(err), agentapi.Error{Kind: fault.KindOf(err).String(), Message: fault.Message(err)})
}

// authenticate verifies req's signature and returns the signing host. It
// checks the URI the client sent (req.RequestURI), not req.URL, because a
// mount that strips "/agents" rewrites req.URL. A noBody request (a
// streamed upload) is verified as if it had an empty body; its content is
// authenticated by the hash in its signed query instead.
func (r *Registry) authenticate(req *http.Request, maxBody int64, noBody bool) (*Host, error) {
	vr := req.WithContext(req.Context())
	if req.RequestURI != "" {
		if u, err := url.ParseRequestURI(req.RequestURI); err == nil {
			vr.URL = u
		}
	}
	if noBody {
		vr.Body = http.NoBody
	}
	var (
		host     *Host
		storeErr error
	)
	_, err := r.verifier.Verify(vr, maxBody, func(id string) ([]byte, bool) {
		h, key, err := r.store.get(req.Context(), id)
		if err != nil {
			if !fault.Is(err, fault.NotFound) {
				storeErr = err
			}
			return nil, false
		}
		host = h
		return key, true
	})
	if storeErr != nil {
		return nil, fault.Wrap(fault.Unavailable, storeErr, "The host registry is unavailable.")
	}
	if err != nil {
		return nil, fault.Wrap(fault.Unauthorized, err, "The agent credential is missing, stale, replayed or wrong.")
	}
	if !noBody {
		req.Body = vr.Body
	}
	return host, nil
}

func (r *Registry) handleJoin(w http.ResponseWriter, req *http.Request) {
	var jr agentapi.JoinRequest
	req.Body = http.MaxBytesReader(w, req.Body, maxJoinBody)
	if err := rest.Decode(req, &jr, false); err != nil {
		writeError(w, err)
		return
	}
	if jr.JoinToken == "" {
		writeError(w, errBadJoinToken())
		return
	}
	if err := validHostname(jr.Hostname); err != nil {
		writeError(w, err)
		return
	}
	if err := validAgentURL(jr.URL); err != nil {
		writeError(w, err)
		return
	}
	if err := validInventory(jr.Inventory); err != nil {
		writeError(w, err)
		return
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		writeError(w, fault.Wrap(fault.Internal, err, "generate agent secret"))
		return
	}
	h, err := r.store.join(req.Context(), hashToken(jr.JoinToken), jr.Hostname, jr.URL, jr.Inventory, secret, r.cfg.Now())
	if err != nil {
		if fault.KindOf(err) == fault.Internal {
			r.log.ErrorContext(req.Context(), "agent join failed", "hostname", jr.Hostname, "err", err)
		}
		writeError(w, err)
		return
	}
	r.log.InfoContext(req.Context(), "agent joined", "host_id", h.ID, "hostname", h.Hostname, "url", h.URL)
	rest.JSON(w, http.StatusOK, agentapi.JoinResponse{
		AgentID:          h.ID,
		Secret:           agentapi.EncodeSecret(secret),
		HeartbeatSeconds: int(math.Ceil(r.cfg.HeartbeatInterval.Seconds())),
	})
}

func (r *Registry) handleHeartbeat(w http.ResponseWriter, req *http.Request) {
	host, err := r.authenticate(req, maxHeartbeatBody, false)
	if err != nil {
		writeError(w, err)
		return
	}
	var hb agentapi.Heartbeat
	if err := rest.Decode(req, &hb, false); err != nil {
		writeError(w, err)
		return
	}
	if hb.AgentID != "" && hb.AgentID != host.ID {
		writeError(w, fault.Invalidf("The heartbeat names another agent."))
		return
	}
	if err := validInventory(hb.Inventory); err != nil {
		writeError(w, err)
		return
	}
	if hb.URL != "" {
		if err := validAgentURL(hb.URL); err != nil {
			writeError(w, err)
			return
		}
	}
	now := r.cfg.Now()
	if err := r.store.heartbeats(req.Context(), []heartbeatUpdate{{ID: host.ID, Inventory: hb.Inventory, URL: hb.URL, At: now}}); err != nil {
		writeError(w, err)
		return
	}
	host.Inventory, host.LastHeartbeat = hb.Inventory, now
	if hb.URL != "" {
		host.URL = hb.URL
	}
	r.announce(*host, now, false)
	hb.AgentID = host.ID
	var resp agentapi.HeartbeatResponse
	seen := map[string]bool{}
	for _, l := range r.subscribers() {
		orphans, err := l.Heartbeat(req.Context(), *host, hb)
		if err != nil {
			// The heartbeat itself is stored; only this listener's orphan
			// verdict is lost, and the next heartbeat asks again.
			r.log.WarnContext(req.Context(), "heartbeat listener failed", "host_id", host.ID, "err", err)
			continue
		}
		for _, o := range orphans {
			if !seen[o] {
				seen[o] = true
				resp.Orphans = append(resp.Orphans, o)
			}
		}
	}
	rest.JSON(w, http.StatusOK, resp)
}

// deliver calls fn for every listener; a failure answers 503 so the agent
// retries the whole delivery (listeners are idempotent).
func (r *Registry) deliver(w http.ResponseWriter, req *http.Request, what string, fn func(Listener) error) {
	for _, l := range r.subscribers() {
		if err := fn(l); err != nil {
			r.log.WarnContext(req.Context(), "agent report listener failed", "report", what,
				"request_id", req.Header.Get(agentapi.HeaderRequestID), "err", err)
			if fault.KindOf(err) == fault.Internal {
				err = fault.Wrap(fault.Unavailable, err, "The control plane could not take the report; retry later.")
			}
			writeError(w, err)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (r *Registry) handleEvents(w http.ResponseWriter, req *http.Request) {
	host, err := r.authenticate(req, maxEventsBody, false)
	if err != nil {
		writeError(w, err)
		return
	}
	var evs agentapi.Events
	if err := rest.Decode(req, &evs, false); err != nil {
		writeError(w, err)
		return
	}
	for _, e := range evs.Events {
		if e.UUID == "" || e.Kind == "" {
			writeError(w, fault.Invalidf("An event needs an instance UUID and a kind."))
			return
		}
	}
	if len(evs.Events) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	r.deliver(w, req, "events", func(l Listener) error { return l.Events(req.Context(), *host, evs.Events) })
}

// handleMetadata answers an agent's metadata proxy. Only a signed agent
// may ask: the guest's address is what identifies the instance, so the
// proxy's word on where a request came from must be a host's.
func (r *Registry) handleMetadata(w http.ResponseWriter, req *http.Request) {
	host, err := r.authenticate(req, maxMetadataBody, false)
	if err != nil {
		writeError(w, err)
		return
	}
	var mr agentapi.MetadataRequest
	if err := rest.Decode(req, &mr, false); err != nil {
		writeError(w, err)
		return
	}
	if (mr.RouterID == "") == (mr.NetworkID == "") || mr.RemoteIP == "" {
		writeError(w, fault.Invalidf("A metadata request names a router or a network, and the guest's address."))
		return
	}
	src := r.metadataSource()
	if src == nil {
		writeError(w, fault.New(fault.Unavailable, "The metadata service is not configured."))
		return
	}
	out, err := src.Metadata(req.Context(), *host, mr)
	if err != nil {
		writeError(w, err)
		return
	}
	rest.JSON(w, http.StatusOK, out)
}

func (r *Registry) handleOperation(w http.ResponseWriter, req *http.Request) {
	host, err := r.authenticate(req, maxOpBody, false)
	if err != nil {
		writeError(w, err)
		return
	}
	var op agentapi.Operation
	if err := rest.Decode(req, &op, false); err != nil {
		writeError(w, err)
		return
	}
	id := chi.URLParam(req, "id")
	if op.ID == "" {
		op.ID = id
	}
	if op.ID != id {
		writeError(w, fault.Invalidf("The operation body names another operation."))
		return
	}
	if op.Status != agentapi.OpSucceeded && op.Status != agentapi.OpFailed {
		writeError(w, fault.Invalidf("Unknown operation status %q.", op.Status))
		return
	}
	r.deliver(w, req, "operation", func(l Listener) error { return l.Operation(req.Context(), *host, op) })
}

func (r *Registry) handleImageGet(w http.ResponseWriter, req *http.Request) {
	host, err := r.authenticate(req, 0, false)
	if err != nil {
		writeError(w, err)
		return
	}
	src := r.imageSource()
	if src == nil {
		writeError(w, fault.New(fault.Unavailable, "No image store is wired to the host registry."))
		return
	}
	rc, size, err := src.OpenImage(req.Context(), chi.URLParam(req, "id"))
	if err != nil {
		writeError(w, err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	if size >= 0 {
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	}
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, rc); err != nil {
		r.log.WarnContext(req.Context(), "image download to agent broke off", "host_id", host.ID, "err", err)
	}
}

// handleImagePut takes a snapshot upload. The body is streamed, so the
// signature covers the declared size and SHA-256 in the query instead, and
// the reader handed to the image store fails unless the content matches.
func (r *Registry) handleImagePut(w http.ResponseWriter, req *http.Request) {
	host, err := r.authenticate(req, 0, true)
	if err != nil {
		writeError(w, err)
		return
	}
	src := r.imageSource()
	if src == nil {
		writeError(w, fault.New(fault.Unavailable, "No image store is wired to the host registry."))
		return
	}
	q := req.URL.Query()
	want, err := hex.DecodeString(q.Get("sha256"))
	size, serr := strconv.ParseInt(q.Get("size"), 10, 64)
	if err != nil || len(want) != sha256.Size || serr != nil || size < 0 {
		writeError(w, fault.Invalidf("An upload needs its size and SHA-256 in the query."))
		return
	}
	vr := &verifyingReader{r: io.LimitReader(req.Body, size+1), h: sha256.New(), want: want, size: size}
	if err := src.UploadImage(req.Context(), chi.URLParam(req, "id"), vr, size); err != nil {
		r.log.WarnContext(req.Context(), "snapshot upload failed", "host_id", host.ID, "err", err)
		if errors.Is(err, errUploadMismatch) {
			err = fault.Wrap(fault.Invalid, err, "The uploaded content does not match its signed size and checksum.")
		}
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

var errUploadMismatch = errors.New("uploaded content does not match its signed size and sha256")

// verifyingReader hashes what passes through and fails the read that
// completes the declared size when the hash differs, never handing over
// the whole declared size, so a consumer that stops at the size (io.CopyN)
// is caught as surely as one that reads to EOF. A short or long body
// fails too.
type verifyingReader struct {
	r       io.Reader
	h       hash.Hash
	want    []byte
	size    int64
	n       int64
	checked bool
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.n += int64(n)
	v.h.Write(p[:n])
	switch {
	case v.n > v.size:
		return n, errUploadMismatch
	case v.n == v.size && !v.checked:
		v.checked = true
		if !bytes.Equal(v.h.Sum(nil), v.want) && n > 0 {
			// Withhold the last byte: io.CopyN ignores an error once it
			// has its n bytes, but not a short count.
			return n - 1, errUploadMismatch
		}
	case err == io.EOF && v.n < v.size:
		return n, errUploadMismatch
	}
	return n, err
}

// validHostname accepts DNS-like names: they show up in os-hypervisors,
// logs and the dashboard, so nothing that could break a line or markup.
func validHostname(s string) error {
	if s == "" || len(s) > 255 || s[0] == '-' || s[0] == '.' {
		return fault.Invalidf("A hostname needs 1 to 255 letters, digits, dots, dashes or underscores.")
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return fault.Invalidf("A hostname needs 1 to 255 letters, digits, dots, dashes or underscores.")
		}
	}
	return nil
}

func validAgentURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || len(s) > 1024 {
		return fault.Invalidf("The agent URL must be an http or https URL without credentials, query or fragment.")
	}
	return nil
}

func validInventory(inv agentapi.Inventory) error {
	if inv.VCPUs < 0 || inv.MemoryMB < 0 || inv.DiskGB < 0 || inv.HypervisorVersion < 0 {
		return fault.Invalidf("Inventory amounts cannot be negative.")
	}
	if len(inv.HypervisorType) > 64 || len(inv.VirtType) > 64 || len(inv.HostIP) > 64 || len(inv.CPUInfo) > 64<<10 {
		return fault.Invalidf("Inventory text fields are too long.")
	}
	return nil
}
