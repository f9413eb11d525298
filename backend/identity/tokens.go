package identity

// Tokens are self-contained: everything validation needs is in the token,
// authenticated by an HMAC, so validating one touches no database and no
// row is written per token. Revocation is by events (revocation.go).
//
// Binary layout, version 1 (all integers big-endian):
//
//	0      version (1)
//	1      methods bitmask (password 1, token 2, application_credential 4)
//	2      scope: 0 unscoped, 1 project, 2 domain, 3 system
//	3      flags: 1 has parent audit ID, 2 has application credential
//	4..11  issued_at, Unix nanoseconds
//	12..19 expires_at, Unix nanoseconds
//	20..35 audit ID (16 random bytes)
//	       [16 bytes parent audit ID]
//	       user ID, user name, user domain ID
//	       scope: project ID + project domain ID | domain ID | nothing
//	       [application credential ID]
//	       role count (1 byte), then per role: ID, name
//	       HMAC-SHA256 of everything before it (32 bytes)
//
// IDs that are 32 lowercase hex digits (all generated ones) take 17 bytes:
// 0xFF then the 16 bytes; any other ID, and every name, is a length byte
// (0..254) and the bytes. The whole is base64url without padding. A
// typical project token with three roles is about 300 characters.

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash"
	"sync"
	"time"

	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
)

const (
	tokenVersion = 1
	macLen       = sha256.Size
	auditLen     = 16
	// maxTokenLen bounds what is decoded at all; real tokens are far shorter.
	maxTokenLen = 8192
	hexIDMarker = 0xFF
	maxRoles    = 255
)

const (
	methodPasswordBit byte = 1 << iota
	methodTokenBit
	methodAppCredBit
)

const (
	scopeNone byte = iota
	scopeProject
	scopeDomain
	scopeSystem
)

const (
	flagParentAudit = 1 << iota
	flagAppCred
)

// tokenPayload is a token's content.
type tokenPayload struct {
	Methods      byte
	Scope        byte
	IssuedAt     int64
	ExpiresAt    int64
	AuditID      [auditLen]byte
	ParentAudit  [auditLen]byte
	HasParent    bool
	UserID       string
	UserName     string
	UserDomainID string
	ProjectID    string
	ProjectDomID string
	DomainID     string
	AppCredID    string
	RoleIDs      []string
	RoleNames    []string
}

var errBadToken = errors.New("malformed token")

func newAuditID() [auditLen]byte {
	var a [auditLen]byte
	_, _ = rand.Read(a[:])
	return a
}

// auditString renders an audit ID the way Keystone does: 22 characters of
// base64url without padding.
func auditString(a [auditLen]byte) string { return base64.RawURLEncoding.EncodeToString(a[:]) }

func methodNames(b byte) []string {
	out := make([]string, 0, 2)
	if b&methodPasswordBit != 0 {
		out = append(out, MethodPassword)
	}
	if b&methodTokenBit != 0 {
		out = append(out, MethodToken)
	}
	if b&methodAppCredBit != 0 {
		out = append(out, MethodAppCredential)
	}
	return out
}

// signer signs and verifies tokens with one HMAC key. MAC states are pooled
// because hmac.New allocates and hashes the key on every call.
type signer struct {
	pool sync.Pool
}

func newSigner(key []byte) *signer {
	k := append([]byte(nil), key...)
	return &signer{pool: sync.Pool{New: func() any { return hmac.New(sha256.New, k) }}}
}

func (s *signer) mac(dst, msg []byte) []byte {
	h := s.pool.Get().(hash.Hash)
	h.Reset()
	h.Write(msg)
	dst = h.Sum(dst)
	s.pool.Put(h)
	return dst
}

func appendID(b []byte, id string) ([]byte, error) {
	if len(id) == 32 && isLowerHex(id) {
		var raw [16]byte
		_, _ = hex.Decode(raw[:], []byte(id))
		b = append(b, hexIDMarker)
		return append(b, raw[:]...), nil
	}
	return appendStr(b, id)
}

func appendStr(b []byte, s string) ([]byte, error) {
	if len(s) >= hexIDMarker {
		return nil, errors.New("token field too long")
	}
	b = append(b, byte(len(s)))
	return append(b, s...), nil
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// encode serialises and signs p.
func (s *signer) encode(p *tokenPayload) (string, error) {
	if len(p.RoleIDs) > maxRoles || len(p.RoleIDs) != len(p.RoleNames) {
		return "", errors.New("token: bad role list")
	}
	b := make([]byte, 0, 160+len(p.RoleIDs)*32)
	var flags byte
	if p.HasParent {
		flags |= flagParentAudit
	}
	if p.AppCredID != "" {
		flags |= flagAppCred
	}
	b = append(b, tokenVersion, p.Methods, p.Scope, flags)
	b = binary.BigEndian.AppendUint64(b, uint64(p.IssuedAt))
	b = binary.BigEndian.AppendUint64(b, uint64(p.ExpiresAt))
	b = append(b, p.AuditID[:]...)
	if p.HasParent {
		b = append(b, p.ParentAudit[:]...)
	}
	var err error
	app := func(f func([]byte, string) ([]byte, error), v string) {
		if err == nil {
			b, err = f(b, v)
		}
	}
	app(appendID, p.UserID)
	app(appendStr, p.UserName)
	app(appendID, p.UserDomainID)
	switch p.Scope {
	case scopeProject:
		app(appendID, p.ProjectID)
		app(appendID, p.ProjectDomID)
	case scopeDomain:
		app(appendID, p.DomainID)
	}
	if p.AppCredID != "" {
		app(appendID, p.AppCredID)
	}
	b = append(b, byte(len(p.RoleIDs)))
	for i := range p.RoleIDs {
		app(appendID, p.RoleIDs[i])
		app(appendStr, p.RoleNames[i])
	}
	if err != nil {
		return "", err
	}
	b = s.mac(b, b)
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// reader walks a decoded token; any overrun sets bad instead of panicking.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) take(n int) []byte {
	if r.bad || n < 0 || n > len(r.b) {
		r.bad = true
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() byte {
	v := r.take(1)
	if v == nil {
		return 0
	}
	return v[0]
}

func (r *reader) str() string {
	n := int(r.u8())
	if n == hexIDMarker {
		r.bad = true
		return ""
	}
	return string(r.take(n))
}

func (r *reader) id() string {
	if len(r.b) > 0 && r.b[0] == hexIDMarker {
		r.take(1)
		raw := r.take(16)
		if raw == nil {
			return ""
		}
		return hex.EncodeToString(raw)
	}
	return r.str()
}

// decode verifies the MAC and parses the token. It checks neither expiry
// nor revocation.
func (s *signer) decode(tok string) (*tokenPayload, error) {
	if len(tok) < 16 || len(tok) > maxTokenLen {
		return nil, errBadToken
	}
	var buf [1024]byte
	dst := buf[:0]
	if n := base64.RawURLEncoding.DecodedLen(len(tok)); n > len(buf) {
		dst = make([]byte, 0, n)
	}
	raw, err := base64.RawURLEncoding.AppendDecode(dst, []byte(tok))
	if err != nil || len(raw) < 4+16+auditLen+macLen {
		return nil, errBadToken
	}
	body, sum := raw[:len(raw)-macLen], raw[len(raw)-macLen:]
	var want [macLen]byte
	if !hmac.Equal(s.mac(want[:0], body), sum) {
		return nil, errBadToken
	}
	r := reader{b: body}
	p := &tokenPayload{}
	if r.u8() != tokenVersion {
		return nil, errBadToken
	}
	p.Methods = r.u8()
	p.Scope = r.u8()
	flags := r.u8()
	if ts := r.take(16); ts != nil {
		p.IssuedAt = int64(binary.BigEndian.Uint64(ts[:8]))
		p.ExpiresAt = int64(binary.BigEndian.Uint64(ts[8:]))
	}
	copy(p.AuditID[:], r.take(auditLen))
	if flags&flagParentAudit != 0 {
		p.HasParent = true
		copy(p.ParentAudit[:], r.take(auditLen))
	}
	p.UserID = r.id()
	p.UserName = r.str()
	p.UserDomainID = r.id()
	switch p.Scope {
	case scopeNone, scopeSystem:
	case scopeProject:
		p.ProjectID = r.id()
		p.ProjectDomID = r.id()
	case scopeDomain:
		p.DomainID = r.id()
	default:
		return nil, errBadToken
	}
	if flags&flagAppCred != 0 {
		p.AppCredID = r.id()
	}
	n := int(r.u8())
	if n > 0 && !r.bad {
		p.RoleIDs = make([]string, n)
		p.RoleNames = make([]string, n)
		for i := 0; i < n && !r.bad; i++ {
			p.RoleIDs[i] = r.id()
			p.RoleNames[i] = r.str()
		}
	}
	if r.bad || len(r.b) != 0 || p.UserID == "" {
		return nil, errBadToken
	}
	return p, nil
}

// credentials turns a payload into what the rest of Nimbus sees.
func (p *tokenPayload) credentials(tok string) *auth.Credentials {
	c := &auth.Credentials{
		UserID:          p.UserID,
		UserName:        p.UserName,
		UserDomainID:    p.UserDomainID,
		ProjectID:       p.ProjectID,
		ProjectDomainID: p.ProjectDomID,
		DomainID:        p.DomainID,
		System:          p.Scope == scopeSystem,
		Roles:           p.RoleNames,
		RoleIDs:         p.RoleIDs,
		AuditID:         auditString(p.AuditID),
		Methods:         methodNames(p.Methods),
		IssuedAt:        time.Unix(0, p.IssuedAt).UTC(),
		ExpiresAt:       time.Unix(0, p.ExpiresAt).UTC(),
		AppCredentialID: p.AppCredID,
		Token:           tok,
	}
	if c.Roles == nil {
		c.Roles, c.RoleIDs = []string{}, []string{}
	}
	return c
}

// auditIDs is Keystone's audit_ids: this token's, then its chain's origin.
func (p *tokenPayload) auditIDs() []string {
	ids := []string{auditString(p.AuditID)}
	if p.HasParent {
		ids = append(ids, auditString(p.ParentAudit))
	}
	return ids
}

// verify decodes tok and checks its expiry and the revocation events. Every
// failure is the same error, so callers cannot tell why.
func (s *Service) verify(tok string) (*tokenPayload, error) {
	p, err := s.signer.decode(tok)
	if err != nil {
		return nil, err
	}
	if s.now().UnixNano() >= p.ExpiresAt {
		return nil, errBadToken
	}
	if s.rev.revoked(p) {
		return nil, errBadToken
	}
	return p, nil
}
