package identity

// Revocation works by events, as Keystone's does for Fernet tokens: an event
// names some attributes (a user, a project, a user on a project, an audit
// ID, ...) and an instant, and revokes every token carrying those attributes
// issued at or before that instant. Events are written to revocation_events
// (so a restart and other replicas see them) and held in memory in one map
// per kind of event, each keeping only the latest instant, so a validation
// costs a handful of map lookups under a read lock.
//
// Ordering: Authenticate takes its issue stamp before reading anything from
// the database, and a change that revokes takes its event stamp after its
// transaction commits. Stamps strictly increase (Service.stamp), so a token
// whose checks saw the state before the change was stamped before the event
// and is revoked (issued_at <= issued_before), and a token stamped after the
// event saw the change.
//
// Events older than the token lifetime can match only expired tokens and are
// pruned.

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// revocationEvent is one stored event. Empty fields are wildcards; the set
// fields must all match.
type revocationEvent struct {
	UserID, ProjectID, DomainID, RoleID, AuditID, AppCredID string
	IssuedBefore                                            int64 // Unix nanoseconds
}

// revocationList is the in-memory index of events.
type revocationList struct {
	mu          sync.RWMutex
	user        map[string]int64
	project     map[string]int64
	domain      map[string]int64 // matches the user's domain, the project's domain or the scope domain
	role        map[string]int64
	audit       map[string]int64 // keyed by the raw 16 bytes
	appCred     map[string]int64
	userProject map[[2]string]int64
	userDomain  map[[2]string]int64 // a user on a domain scope
	userRole    map[[2]string]int64 // a user's tokens carrying a role (system grants)
	latest      int64
	lastPrune   time.Time
}

func newRevocationList() *revocationList {
	return &revocationList{
		user: map[string]int64{}, project: map[string]int64{}, domain: map[string]int64{},
		role: map[string]int64{}, audit: map[string]int64{}, appCred: map[string]int64{},
		userProject: map[[2]string]int64{}, userDomain: map[[2]string]int64{}, userRole: map[[2]string]int64{},
	}
}

func keepMax[K comparable](m map[K]int64, k K, v int64) {
	if old, ok := m[k]; !ok || v > old {
		m[k] = v
	}
}

// add indexes events. A combination this list does not know falls back to
// revoking everything of the event's user, which over-revokes rather than
// lets a token through.
func (l *revocationList) add(evs ...revocationEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range evs {
		t := e.IssuedBefore
		if t > l.latest {
			l.latest = t
		}
		switch {
		case e.AuditID != "":
			raw, err := base64.RawURLEncoding.DecodeString(e.AuditID)
			if err != nil || len(raw) != auditLen {
				continue // cannot match any token we issue
			}
			keepMax(l.audit, string(raw), t)
		case e.AppCredID != "":
			keepMax(l.appCred, e.AppCredID, t)
		case e.UserID != "" && e.ProjectID != "":
			keepMax(l.userProject, [2]string{e.UserID, e.ProjectID}, t)
		case e.UserID != "" && e.DomainID != "":
			keepMax(l.userDomain, [2]string{e.UserID, e.DomainID}, t)
		case e.UserID != "" && e.RoleID != "":
			keepMax(l.userRole, [2]string{e.UserID, e.RoleID}, t)
		case e.UserID != "":
			keepMax(l.user, e.UserID, t)
		case e.ProjectID != "":
			keepMax(l.project, e.ProjectID, t)
		case e.DomainID != "":
			keepMax(l.domain, e.DomainID, t)
		case e.RoleID != "":
			keepMax(l.role, e.RoleID, t)
		}
	}
}

// revoked reports whether some event matches p.
func (l *revocationList) revoked(p *tokenPayload) bool {
	at := p.IssuedAt
	hit := func(m map[string]int64, k string) bool {
		v, ok := m[k]
		return ok && at <= v
	}
	hit2 := func(m map[[2]string]int64, a, b string) bool {
		v, ok := m[[2]string{a, b}]
		return ok && at <= v
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if at > l.latest {
		return false // issued after every event: the common case
	}
	if hit(l.user, p.UserID) || hit(l.domain, p.UserDomainID) || hit(l.audit, string(p.AuditID[:])) {
		return true
	}
	if p.ProjectID != "" && (hit(l.project, p.ProjectID) || hit(l.domain, p.ProjectDomID) ||
		hit2(l.userProject, p.UserID, p.ProjectID)) {
		return true
	}
	if p.DomainID != "" && (hit(l.domain, p.DomainID) || hit2(l.userDomain, p.UserID, p.DomainID)) {
		return true
	}
	if p.AppCredID != "" && hit(l.appCred, p.AppCredID) {
		return true
	}
	for _, r := range p.RoleIDs {
		if hit(l.role, r) || hit2(l.userRole, p.UserID, r) {
			return true
		}
	}
	return false
}

// prune drops events older than before.
func (l *revocationList) prune(before int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range []map[string]int64{l.user, l.project, l.domain, l.role, l.audit, l.appCred} {
		for k, v := range m {
			if v < before {
				delete(m, k)
			}
		}
	}
	for _, m := range []map[[2]string]int64{l.userProject, l.userDomain, l.userRole} {
		for k, v := range m {
			if v < before {
				delete(m, k)
			}
		}
	}
}

// revoke records events stamped now: in memory first, so this process
// refuses the tokens at once even if the write fails, then in the database.
// It must be called after the change that causes it has committed.
func (s *Service) revoke(ctx context.Context, evs ...revocationEvent) error {
	if len(evs) == 0 {
		return nil
	}
	t := s.stamp()
	for i := range evs {
		evs[i].IssuedBefore = t
	}
	s.rev.add(evs...)
	if err := s.st.insertRevocations(ctx, evs, s.now()); err != nil {
		slog.ErrorContext(ctx, "persist revocation events", "err", err)
		return fmt.Errorf("revoke tokens: %w", err)
	}
	// Prune now and then, so a long-running controller does not
	// accumulate events.
	if s.rev.duePrune(s.now(), s.cfg.TokenTTL/4) {
		if err := s.pruneRevocations(ctx); err != nil {
			slog.WarnContext(ctx, "prune revocation events", "err", err)
		}
	}
	return nil
}

// duePrune reports whether a prune is due, and if so starts the next period.
func (l *revocationList) duePrune(now time.Time, every time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastPrune) < every {
		return false
	}
	l.lastPrune = now
	return true
}

// pruneRevocations deletes the events older than the token lifetime, in
// the database and in memory.
func (s *Service) pruneRevocations(ctx context.Context) error {
	horizon := s.now().Add(-s.cfg.TokenTTL).UnixNano()
	if err := s.st.pruneRevocations(ctx, horizon); err != nil {
		return fmt.Errorf("prune revocation events: %w", err)
	}
	s.rev.prune(horizon)
	return nil
}

// RefreshRevocations loads the revocation events from the database, which
// only reads. New calls it; with several controller replicas, wiring calls
// it every few seconds so every replica honours every replica's
// revocations within that delay (or replaces the poll with a notification
// on the event bus).
func (s *Service) RefreshRevocations(ctx context.Context) error {
	horizon := s.now().Add(-s.cfg.TokenTTL).UnixNano()
	evs, err := s.st.revocations(ctx, horizon)
	if err != nil {
		return fmt.Errorf("load revocation events: %w", err)
	}
	s.rev.add(evs...)
	for _, e := range evs {
		s.observe(e.IssuedBefore)
	}
	return nil
}

// revokeUsers revokes every token of each user.
func (s *Service) revokeUsers(ctx context.Context, ids ...string) error {
	evs := make([]revocationEvent, 0, len(ids))
	for _, id := range ids {
		evs = append(evs, revocationEvent{UserID: id})
	}
	return s.revoke(ctx, evs...)
}
