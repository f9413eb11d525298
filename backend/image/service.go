// Package image is Nimbus's image service, compatible with Glance v2:
// image records with their custom properties, tags and members, image data
// stored content-addressed on the local file system, and the checks that
// keep an untrusted disk image from reaching files it does not own.
//
// Every exported method that acts for a caller reads the caller's
// credentials from the context (auth.FromContext) and checks its action
// through the policy engine with Glance's rule names, so the REST API, the
// dashboard and other services enforce the same rules. An image the caller
// may not see answers NotFound, exactly like a missing one. Errors are
// *fault.Error values; each method's doc names the kinds it returns.
//
// Data: an upload is streamed to a temporary file while its MD5 (Glance's
// checksum) and SHA-512 (os_hash_value) are computed, so the body is never
// held in memory. The header is then parsed in Go (DetectFormat) and only
// then is `qemu-img info -f <format> --output=json` run, under prlimit(1)
// (1 GiB of address space, 30 s of CPU, as OpenStack runs it) when prlimit
// is installed and always under a wall-clock timeout; both must agree with
// the declared disk_format and show no backing file, external data file or
// VMDK extent outside the image. Rejected data leaves the image killed with
// nothing kept. The accepted bytes are stored once under
// <DataDir>/images/sha512/<sha512 hex>, shared by every image with the same
// content and removed with the last of them; deleted images stay as
// tombstones so an image ID is never reused.
package image

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/google/uuid"
	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/db"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
	"github.com/nimbus-cloud/nimbus/backend/platform/policy"
)

// Image statuses, as Glance names them. A deleted image is never shown.
const (
	StatusQueued      = "queued"
	StatusSaving      = "saving"
	StatusActive      = "active"
	StatusKilled      = "killed"
	StatusDeactivated = "deactivated"
	StatusDeleted     = "deleted"
)

// Visibilities.
const (
	VisibilityPrivate   = "private"
	VisibilityShared    = "shared"
	VisibilityCommunity = "community"
	VisibilityPublic    = "public"
)

// Member statuses.
const (
	MemberPending  = "pending"
	MemberAccepted = "accepted"
	MemberRejected = "rejected"
)

// HashAlgo is the os_hash_algo of every image; its hex digest also names
// the stored content.
const HashAlgo = "sha512"

// Image is an image record. Size and VirtualSize are nil until the image
// has data; empty strings are shown as null by the REST API.
type Image struct {
	ID              string
	Name            string
	Status          string
	Visibility      string
	Owner           string // project ID
	Protected       bool
	Hidden          bool // os_hidden
	DiskFormat      string
	ContainerFormat string
	MinDisk         int // GB
	MinRAM          int // MB
	Size            *int64
	VirtualSize     *int64
	Checksum        string // MD5 hex
	HashAlgo        string
	HashValue       string // SHA-512 hex
	Tags            []string
	// Properties are the custom (additional) string properties.
	Properties map[string]string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Member is a project an image is shared with.
type Member struct {
	ImageID   string
	MemberID  string // project ID
	Status    string // pending, accepted or rejected
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Change is one JSON-patch operation on an image, as PATCH
// /v2/images/{id} carries it: Op is add, replace or remove; Path names one
// attribute ("name", "tags", a custom property); Value is the decoded JSON
// value (string, bool, json.Number or float64, []any, nil). Draft4 selects
// the v2.0 patch media type's semantics, where add on an existing
// attribute is a conflict.
type Change struct {
	Op     string
	Path   string
	Value  any
	Draft4 bool
}

// TimeFilter compares created_at or updated_at with T: Op is one of eq,
// neq, gt, gte, lt, lte.
type TimeFilter struct {
	Op string
	T  time.Time
}

// ListFilter selects images, as GET /v2/images's query parameters do.
type ListFilter struct {
	IDs              []string // any of them
	Names            []string // any of them
	Statuses         []string
	DiskFormats      []string
	ContainerFormats []string
	// Visibility is "", public, private, shared, community or all. "" lists
	// the caller's own images, public ones and accepted shared ones, but not
	// community images, as Glance does.
	Visibility string
	Owner      string
	Tags       []string // all of them
	// MemberStatus selects which shared-with-me images are listed: pending,
	// accepted (the default when ""), rejected or all.
	MemberStatus string
	Protected    *bool
	// Hidden lists only os_hidden images when true and only visible ones
	// when false, as Glance's os_hidden filter does.
	Hidden     bool
	SizeMin    *int64
	SizeMax    *int64
	CreatedAt  []TimeFilter
	UpdatedAt  []TimeFilter
	Properties map[string]string // custom property equals value
	// SortKeys and SortDirs order the result (created_at desc when empty);
	// the image ID breaks ties.
	SortKeys []string
	SortDirs []string
	// Limit is the page size (25 when 0, at most 1000); Marker is the ID of
	// the last image of the previous page.
	Limit  int
	Marker string
}

// Config configures the image service. Zero values take the defaults.
type Config struct {
	// DataDir holds the image content under DataDir/images. Required.
	DataDir string
	// Policy is the engine with PolicyRules registered; when nil the
	// service builds one from PolicyRules.
	Policy *policy.Engine
	// Tokens validates X-Auth-Token for the REST API (the identity service).
	Tokens auth.Validator
	// IdentityURL is the identity API's public URL for the WWW-Authenticate
	// header of a 401; derived from the request when empty.
	IdentityURL string
	// MaxImageBytes caps one image's data: 10 GiB when zero.
	MaxImageBytes int64
	// MaxVirtualBytes caps an image's virtual disk size: 2 TiB when zero.
	MaxVirtualBytes int64
	// ImageQuota is the number of images a project may own: 100 when zero,
	// no limit when negative.
	ImageQuota int
	// ImageBytesQuota is the total data size a project's images may hold:
	// 100 GiB when zero, no limit when negative.
	ImageBytesQuota int64
	// QemuImg is the qemu-img binary: "qemu-img" (found on PATH) when empty.
	QemuImg string
	// QemuTimeout bounds one qemu-img run: 30 s when zero.
	QemuTimeout time.Duration
	// Now is the clock, time.Now when nil.
	Now func() time.Time
}

// Limits Glance also enforces, with its default values.
const (
	maxTagsPerImage       = 128 // image_tag_quota
	maxPropertiesPerImage = 128 // image_property_quota
	maxMembersPerImage    = 128 // image_member_quota
	maxNameLen            = 255
	maxTagLen             = 255
	maxPropertyNameLen    = 255
	maxPropertyValueLen   = 65535
	defaultPageSize       = 25
	maxPageSize           = 1000
)

// Service is the image service. It is safe for concurrent use.
type Service struct {
	db  *db.DB
	st  *store
	cfg Config
	pol *policy.Engine

	contentDir string // DataDir/images/sha512
	tmpDir     string // DataDir/images/tmp
	trashDir   string // DataDir/images/trash
	qemu       qemuRunner
}

// New returns the image service over d, whose migrations must have been
// applied. It creates the content directories and removes temporary files
// an interrupted upload left behind more than a day ago.
func New(ctx context.Context, d *db.DB, cfg Config) (*Service, error) {
	if cfg.DataDir == "" {
		return nil, fmt.Errorf("image service: a data directory is required")
	}
	if cfg.MaxImageBytes <= 0 {
		cfg.MaxImageBytes = 10 << 30
	}
	if cfg.MaxVirtualBytes <= 0 {
		cfg.MaxVirtualBytes = 2 << 40
	}
	if cfg.ImageQuota == 0 {
		cfg.ImageQuota = 100
	}
	if cfg.ImageBytesQuota == 0 {
		cfg.ImageBytesQuota = 100 << 30
	}
	if cfg.QemuImg == "" {
		cfg.QemuImg = "qemu-img"
	}
	if cfg.QemuTimeout <= 0 {
		cfg.QemuTimeout = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Policy == nil {
		cfg.Policy = policy.New(PolicyRules())
	}
	abs, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("image data directory: %w", err)
	}
	cfg.DataDir = abs
	root := filepath.Join(cfg.DataDir, "images")
	s := &Service{
		db: d, st: &store{db: d}, cfg: cfg, pol: cfg.Policy,
		contentDir: filepath.Join(root, "sha512"),
		tmpDir:     filepath.Join(root, "tmp"),
		trashDir:   filepath.Join(root, "trash"),
		qemu:       qemuRunner{bin: cfg.QemuImg, timeout: cfg.QemuTimeout},
	}
	for _, dir := range []string{s.contentDir, s.tmpDir, s.trashDir} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create image directory: %w", err)
		}
	}
	// Fail at start, not at the first request, when the schema is missing.
	if _, err := d.ExecContext(ctx, `SELECT 1 FROM images LIMIT 1`); err != nil {
		return nil, fmt.Errorf("image service: the images table is missing (migrations not applied?): %w", err)
	}
	s.sweepTemp(24 * time.Hour)
	return s, nil
}

// sweepTemp removes temporary and trashed files older than age: what an
// upload or a delete interrupted by a crash left behind. Younger files may
// belong to work in progress on another replica sharing the directory.
func (s *Service) sweepTemp(age time.Duration) {
	cutoff := s.cfg.Now().Add(-age)
	for _, dir := range []string{s.tmpDir, s.trashDir} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if info, err := e.Info(); err == nil && info.ModTime().Before(cutoff) {
				_ = os.Remove(filepath.Join(dir, e.Name()))
			}
		}
	}
}

// now is the service clock, truncated to the microsecond the store keeps.
func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Microsecond) }

// isAdmin reports whether c passes the admin rule, which lets it see and
// act on every project's images, as Glance's is_admin context does.
func (s *Service) isAdmin(c *auth.Credentials) bool {
	return s.pol.Allowed("admin_required", c, nil)
}

// newID returns a random UUID4 in its canonical dashed form, as Glance's
// image IDs are.
func newID() string { return uuid.NewString() }

// notFound is the one answer for a missing image and for one the caller
// may not see.
func notFound(id string) error {
	return fault.NotFoundf("No image found with ID %s", id)
}
