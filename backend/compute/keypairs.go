package compute

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"regexp"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// Key pair types.
const (
	KeypairSSH  = "ssh"
	KeypairX509 = "x509"
)

// Keypair is a user's SSH public key (or X.509 certificate), injected into
// the servers that name it.
type Keypair struct {
	ID          int64
	Name        string
	UserID      string
	Type        string
	PublicKey   string
	Fingerprint string
	// PrivateKey is set only in the result of a generating CreateKeypair.
	PrivateKey string
	CreatedAt  time.Time
}

// KeypairCreate asks for a key pair: imported when PublicKey is set,
// generated otherwise.
type KeypairCreate struct {
	Name      string
	PublicKey string
	// Type is KeypairSSH (default) or KeypairX509.
	Type string
	// UserID makes the key pair another user's (admins, microversion 2.10).
	UserID string
	// ExtendedNames allows '@' and '.' in the name (microversion 2.92).
	ExtendedNames bool
}

var (
	keypairNamePattern    = regexp.MustCompile(`^[_\- a-zA-Z0-9]+$`)
	keypairNamePatternExt = regexp.MustCompile(`^[_\-@\. a-zA-Z0-9]+$`)
)

// keypairOwner resolves whose key pairs a call concerns: the caller, or
// userID when given (which policy allows to admins).
func (s *Service) keypairOwner(ctx context.Context, action, userID string) (string, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return "", err
	}
	if userID == "" {
		userID = c.UserID
	}
	if _, err := s.authorize(ctx, action, projectTarget(c.ProjectID, userID)); err != nil {
		return "", err
	}
	return userID, nil
}

// CreateKeypair imports kc.PublicKey, or generates an RSA-2048 key pair
// (returning its private key once) when none is given. Kinds: Forbidden,
// Invalid (name or key), Conflict (name taken), OverQuota.
func (s *Service) CreateKeypair(ctx context.Context, kc KeypairCreate) (*Keypair, error) {
	owner, err := s.keypairOwner(ctx, "os_compute_api:os-keypairs:create", kc.UserID)
	if err != nil {
		return nil, err
	}
	c, _ := auth.Caller(ctx)
	pat := keypairNamePattern
	if kc.ExtendedNames {
		pat = keypairNamePatternExt
	}
	if len(kc.Name) == 0 || len(kc.Name) > 255 || !pat.MatchString(kc.Name) || strings.TrimSpace(kc.Name) != kc.Name {
		return nil, fault.Invalidf("Keypair data is invalid: Keypair name contains unsafe characters")
	}
	if kc.Type == "" {
		kc.Type = KeypairSSH
	}
	k := &Keypair{Name: kc.Name, UserID: owner, Type: kc.Type, CreatedAt: s.now()}
	switch {
	case kc.Type != KeypairSSH && kc.Type != KeypairX509:
		return nil, fault.Invalidf("Invalid input for field/attribute type. Value: %s. '%s' is not one of ['ssh', 'x509']", kc.Type, kc.Type)
	case kc.PublicKey != "" && kc.Type == KeypairSSH:
		k.PublicKey = strings.TrimSpace(kc.PublicKey)
		if k.Fingerprint, err = sshFingerprint(k.PublicKey); err != nil {
			return nil, err
		}
	case kc.PublicKey != "":
		k.PublicKey = kc.PublicKey
		if k.Fingerprint, err = x509Fingerprint(k.PublicKey); err != nil {
			return nil, err
		}
	case kc.Type == KeypairX509:
		return nil, fault.Invalidf("Keypair data is invalid: generating X509 key pairs is not supported; import a certificate")
	default:
		if k.PrivateKey, k.PublicKey, k.Fingerprint, err = generateSSHKeypair(); err != nil {
			return nil, err
		}
	}
	limit, err := s.quotaLimit(ctx, c.ProjectID, QuotaKeyPairs)
	if err != nil {
		return nil, err
	}
	if err := s.st.createKeypair(ctx, k, limit); err != nil {
		return nil, err
	}
	return k, nil
}

// sshFingerprint validates an OpenSSH public key line and returns the MD5
// fingerprint of its key blob, colon-separated as Nova shows it.
func sshFingerprint(line string) (string, error) {
	pk, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil || strings.TrimSpace(string(rest)) != "" {
		return "", fault.Invalidf("Keypair data is invalid: failed to generate fingerprint")
	}
	return colonHex(md5Sum(pk.Marshal())), nil
}

func md5Sum(b []byte) []byte {
	s := md5.Sum(b) // #nosec G401 -- the fingerprint format is MD5 by definition, not a security check
	return s[:]
}

func colonHex(b []byte) string {
	parts := make([]string, len(b))
	for i, c := range b {
		parts[i] = fmt.Sprintf("%02x", c)
	}
	return strings.Join(parts, ":")
}

// x509Fingerprint validates a PEM certificate and returns its SHA-1
// fingerprint, as Nova does for x509 key pairs.
func x509Fingerprint(certPEM string) (string, error) {
	blk, _ := pem.Decode([]byte(certPEM))
	if blk == nil || blk.Type != "CERTIFICATE" {
		return "", fault.Invalidf("Keypair data is invalid: failed to generate X509 fingerprint. Error message: not a PEM certificate")
	}
	if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
		return "", fault.Invalidf("Keypair data is invalid: failed to generate X509 fingerprint. Error message: %s", err)
	}
	sum := sha1.Sum(blk.Bytes) // #nosec G401 -- Nova's x509 fingerprint format
	return colonHex(sum[:]), nil
}

// generateSSHKeypair makes an RSA-2048 key pair as Nova does: a PKCS#1 PEM
// private key and an OpenSSH public key line ending in Generated-by-Nova.
func generateSSHKeypair() (priv, pub, fp string, err error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", "", "", fault.Wrap(fault.Internal, err, "generate key pair")
	}
	spk, err := ssh.NewPublicKey(&key.PublicKey)
	if err != nil {
		return "", "", "", fault.Wrap(fault.Internal, err, "generate key pair")
	}
	priv = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	pub = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(spk))) + " Generated-by-Nova"
	return priv, pub, colonHex(md5Sum(spk.Marshal())), nil
}

// ListKeypairs returns the key pairs of the caller (or of userID, for
// admins), by name, after marker, at most limit (0 is all). Kinds:
// Forbidden, Invalid (unknown marker).
func (s *Service) ListKeypairs(ctx context.Context, userID string, limit int, marker string) ([]Keypair, error) {
	owner, err := s.keypairOwner(ctx, "os_compute_api:os-keypairs:index", userID)
	if err != nil {
		return nil, err
	}
	ks, err := s.st.listKeypairs(ctx, owner)
	if err != nil {
		return nil, err
	}
	return pageBy(ks, marker, limit, func(k Keypair) string { return k.Name })
}

// GetKeypair returns the caller's (or userID's) key pair name. Kinds:
// Forbidden, NotFound.
func (s *Service) GetKeypair(ctx context.Context, userID, name string) (*Keypair, error) {
	owner, err := s.keypairOwner(ctx, "os_compute_api:os-keypairs:show", userID)
	if err != nil {
		return nil, err
	}
	return s.st.getKeypair(ctx, s.st.db, owner, name)
}

// DeleteKeypair deletes the caller's (or userID's) key pair name. Kinds:
// Forbidden, NotFound.
func (s *Service) DeleteKeypair(ctx context.Context, userID, name string) error {
	owner, err := s.keypairOwner(ctx, "os_compute_api:os-keypairs:delete", userID)
	if err != nil {
		return err
	}
	return s.st.deleteKeypair(ctx, owner, name)
}
