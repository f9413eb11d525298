package image

import (
	"context"
	"crypto/md5"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"

	"github.com/nimbus-cloud/nimbus/backend/platform/auth"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// ErrNoData is returned by OpenContent for an image without data (queued,
// saving or killed). The REST API answers it with 204 No Content, as Glance.
var ErrNoData = fault.Conflictf("The image has no data.")

// contentPath is where content with SHA-512 hex digest hash is stored.
func (s *Service) contentPath(hash string) (string, error) {
	if len(hash) != sha512.Size*2 {
		return "", fmt.Errorf("malformed content hash %q", truncate(hash, 16))
	}
	if _, err := hex.DecodeString(hash); err != nil {
		return "", fmt.Errorf("malformed content hash %q", truncate(hash, 16))
	}
	return filepath.Join(s.contentDir, hash), nil
}

// Upload stores an image's data from r: size is its length, or -1 when
// unknown. The image must be queued with its disk and container formats
// set; it is saving while the data streams to disk and is checked (see
// DetectFormat and the package doc), then active with its checksum,
// os_hash_value, size and virtual_size. Data that fails the checks leaves
// the image killed with nothing kept (Invalid); data over the size cap
// leaves it killed too (TooLarge); over the project's byte quota (TooLarge)
// or when reading r fails, it is queued again. Compute uses it for
// snapshots. Faults: Unauthorized, NotFound, Forbidden, Invalid, Conflict
// (not queued), TooLarge, Internal.
func (s *Service) Upload(ctx context.Context, id string, r io.Reader, size int64) (*Image, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	img, member, err := s.st.image(ctx, id, c.ProjectID)
	if fault.Is(err, fault.NotFound) {
		return nil, notFound(id)
	}
	if err != nil {
		return nil, err
	}
	if err := s.access(c, img, member, "upload_image"); err != nil {
		return nil, err
	}
	return s.receive(ctx, img, r, size, s.cfg.ImageBytesQuota)
}

// readErr remembers an error of the reader it wraps, so a failing client
// can be told from a failing disk.
type readErr struct {
	r   io.Reader
	err error
}

func (e *readErr) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// receive streams r into the content store for img, within the owner's
// byte quota (< 0: none); see Upload.
func (s *Service) receive(ctx context.Context, img *Image, r io.Reader, size, quota int64) (*Image, error) {
	if img.DiskFormat == "" || img.ContainerFormat == "" {
		return nil, fault.Invalidf("Properties disk_format, container_format must be set prior to saving data.")
	}
	if !slices.Contains(dataContainerFormats, img.ContainerFormat) {
		return nil, fault.Invalidf("Image data with container_format %s cannot be checked; upload the disk itself with container_format bare.", img.ContainerFormat)
	}
	if _, err := s.st.updateImage(ctx, img.ID, "", s.now(), func(cur *Image, _ string) error {
		if cur.Status != StatusQueued {
			return fault.Conflictf("Image status transition from %s to saving is not allowed", cur.Status)
		}
		cur.Status = StatusSaving
		return nil
	}); err != nil {
		return nil, err
	}
	// From here on the image must leave saving whatever happens.
	bg := context.WithoutCancel(ctx)
	if size > s.cfg.MaxImageBytes {
		s.setStatus(bg, img.ID, StatusKilled)
		return nil, s.tooLarge()
	}
	if quota >= 0 && size > 0 {
		if err := checkBytesQuota(ctx, s.st, img, size, quota); err != nil {
			s.setStatus(bg, img.ID, StatusQueued)
			return nil, err
		}
	}

	tmp, err := os.CreateTemp(s.tmpDir, "upload-*")
	if err != nil {
		s.setStatus(bg, img.ID, StatusQueued)
		return nil, fmt.Errorf("create upload file: %w", err)
	}
	tmpPath := tmp.Name()
	defer os.Remove(tmpPath) // a no-op once the file is moved into the store
	md5h, sha := md5.New(), sha512.New()
	src := &readErr{r: r}
	n, err := io.Copy(io.MultiWriter(tmp, md5h, sha), io.LimitReader(src, s.cfg.MaxImageBytes+1))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	switch {
	case src.err != nil:
		s.setStatus(bg, img.ID, StatusQueued)
		return nil, fault.Wrap(fault.Invalid, src.err, "Error reading the image data; the image is queued again.")
	case err != nil:
		s.setStatus(bg, img.ID, StatusQueued)
		return nil, fmt.Errorf("write image data: %w", err)
	case n > s.cfg.MaxImageBytes:
		s.setStatus(bg, img.ID, StatusKilled)
		return nil, s.tooLarge()
	case size >= 0 && n != size:
		s.setStatus(bg, img.ID, StatusQueued)
		return nil, fault.Invalidf("Size of uploaded data (%d bytes) does not match the declared size (%d bytes).", n, size)
	}

	vsize, err := s.validate(bg, tmpPath, img.DiskFormat, n)
	if err != nil {
		if fault.Is(err, fault.Invalid) {
			s.setStatus(bg, img.ID, StatusKilled)
		} else {
			s.setStatus(bg, img.ID, StatusQueued)
		}
		return nil, err
	}

	c := contentInfo{Size: n, VirtualSize: vsize, MD5: hex.EncodeToString(md5h.Sum(nil)), SHA512: hex.EncodeToString(sha.Sum(nil))}
	dst, err := s.contentPath(c.SHA512)
	if err != nil {
		return nil, err
	}
	placed := false
	out, err := s.st.finishUpload(bg, img.ID, c, quota, s.now(), func() error {
		// Same bytes, same name: replacing an existing copy is harmless
		// and repairs a missing one.
		if err := os.Rename(tmpPath, dst); err != nil {
			return fmt.Errorf("store image data: %w", err)
		}
		placed = true
		return nil
	})
	if err != nil {
		if placed {
			s.dropUnreferenced(bg, c.SHA512)
		}
		if errors.Is(err, errUploadGone) {
			return nil, fault.NotFoundf("Image %s could not be found after upload. The image may have been deleted during the upload.", img.ID)
		}
		s.setStatus(bg, img.ID, StatusQueued)
		return nil, err
	}
	return out, nil
}

func (s *Service) tooLarge() error {
	return fault.New(fault.TooLarge, "The incoming image is too large: the limit is %d bytes.", s.cfg.MaxImageBytes)
}

// checkBytesQuota refuses early an upload whose declared size would take
// the owner over its byte quota; finishUpload checks again, atomically.
func checkBytesQuota(ctx context.Context, st *store, img *Image, size, quota int64) error {
	used, err := st.bytesUsed(ctx, img.Owner, img.ID)
	if err != nil {
		return err
	}
	if used+size > quota {
		return overBytesQuota(used, quota, img.Owner, size)
	}
	return nil
}

func overBytesQuota(used, quota int64, owner string, size int64) error {
	return fault.New(fault.TooLarge, "Denying attempt to upload image because it exceeds the quota: %d bytes stored of %d allowed for project %s, this image needs %d more.",
		used, quota, owner, size)
}

// setStatus moves a saving image to status, logging a failure: it runs on
// error paths whose own error the caller reports.
func (s *Service) setStatus(ctx context.Context, id, status string) {
	_, err := s.st.updateImage(ctx, id, "", s.now(), func(cur *Image, _ string) error {
		if cur.Status != StatusSaving {
			return errNoChange
		}
		cur.Status = status
		return nil
	})
	if err != nil && !fault.Is(err, fault.NotFound) {
		slog.ErrorContext(ctx, "image status change failed", "image", id, "status", status, "err", err)
	}
}

// dropUnreferenced removes stored content no image row claims, after a
// failed commit that had already moved it into place.
func (s *Service) dropUnreferenced(ctx context.Context, hash string) {
	refs, row, err := s.st.contentRefs(ctx, hash)
	if err != nil || refs > 0 || row {
		return
	}
	if p, err := s.contentPath(hash); err == nil {
		_ = os.Remove(p)
	}
}

// validate checks the data at path against its declared disk format (see
// DetectFormat and checkQemuInfo) and returns its virtual size. A
// rejection is fault Invalid; anything else is our failure.
func (s *Service) validate(ctx context.Context, path, diskFormat string, size int64) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("open upload: %w", err)
	}
	fi, err := DetectFormat(f, size)
	f.Close()
	if err != nil {
		return 0, err
	}
	want := detectedFormat(diskFormat)
	if fi.Format != want && !(want == "raw" && fi.Format == "iso") {
		return 0, unsafeImage(diskFormat, "the data is a %s image, not %s as declared by disk_format", fi.Format, diskFormat)
	}
	if fi.VirtualSize > s.cfg.MaxVirtualBytes {
		return 0, unsafeImage(diskFormat, "the virtual size %d exceeds the limit of %d bytes", fi.VirtualSize, s.cfg.MaxVirtualBytes)
	}
	info, err := s.qemu.info(ctx, path, qemuFormat(diskFormat))
	var qf *qemuFailed
	if errors.As(err, &qf) {
		return 0, unsafeImage(diskFormat, "qemu-img cannot read the data as %s: %s", diskFormat, truncate(qf.msg, 200))
	}
	if err != nil {
		return 0, err
	}
	if err := checkQemuInfo(info, path, diskFormat); err != nil {
		return 0, err
	}
	vsize := info.VirtualSize
	if qemuFormat(diskFormat) == "raw" {
		vsize = size
	}
	if vsize > s.cfg.MaxVirtualBytes {
		return 0, unsafeImage(diskFormat, "the virtual size %d exceeds the limit of %d bytes", vsize, s.cfg.MaxVirtualBytes)
	}
	return vsize, nil
}

// OpenContent opens an image's data for reading, for a caller that may
// download it: the compute service fetching a base image, or the REST API.
// A deactivated image's data is for admins only. The caller closes the
// reader; it stays readable even if the image is deleted meanwhile.
// Faults: Unauthorized, NotFound, Forbidden, Conflict (ErrNoData).
func (s *Service) OpenContent(ctx context.Context, id string) (io.ReadSeekCloser, *Image, error) {
	c, err := auth.Caller(ctx)
	if err != nil {
		return nil, nil, err
	}
	img, member, err := s.st.image(ctx, id, c.ProjectID)
	if fault.Is(err, fault.NotFound) {
		return nil, nil, notFound(id)
	}
	if err != nil {
		return nil, nil, err
	}
	if !s.visible(c, img, member) {
		return nil, nil, notFound(id)
	}
	if img.Status == StatusDeactivated && !s.isAdmin(c) {
		return nil, nil, fault.Forbiddenf("The requested image has been deactivated. Image data download is forbidden.")
	}
	if err := s.pol.Enforce("download_image", c, target(c, img, member)); err != nil {
		return nil, nil, err
	}
	if (img.Status != StatusActive && img.Status != StatusDeactivated) || img.HashValue == "" {
		return nil, img, ErrNoData
	}
	p, err := s.contentPath(img.HashValue)
	if err != nil {
		return nil, nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, img, fault.Wrap(fault.Unavailable, err, "The image data is missing from the store.")
	}
	if err != nil {
		return nil, nil, fmt.Errorf("open image data: %w", err)
	}
	return f, img, nil
}

// DeleteImage deletes an image; its content is removed when no other image
// shares it. The ID stays taken. Faults: Unauthorized, NotFound, Forbidden
// (policy, or a protected image).
func (s *Service) DeleteImage(ctx context.Context, id string) error {
	c, err := auth.Caller(ctx)
	if err != nil {
		return err
	}
	var from, trash string
	err = s.st.deleteImage(ctx, id, c.ProjectID, s.now(), func(img *Image, member string) error {
		if err := s.access(c, img, member, "delete_image"); err != nil {
			return err
		}
		if img.Protected {
			return fault.Forbiddenf("Image %s is protected and cannot be deleted.", img.ID)
		}
		return nil
	}, func(hash string) error {
		// Move the file aside inside the transaction, so a parallel upload
		// of the same bytes can never lose the file it just stored.
		p, err := s.contentPath(hash)
		if err != nil {
			return err
		}
		t := filepath.Join(s.trashDir, hash+"."+newID())
		if err := os.Rename(p, t); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return fmt.Errorf("remove image data: %w", err)
		}
		from, trash = p, t
		return nil
	})
	if fault.Is(err, fault.NotFound) {
		return notFound(id)
	}
	if err != nil {
		if trash != "" {
			_ = os.Rename(trash, from)
		}
		return err
	}
	if trash != "" {
		_ = os.Remove(trash)
	}
	return nil
}

// RegisterFile makes sure an image named img.Name owned by img.Owner holds
// the data of the local file at path, for bootstrap (the public tiny
// image): an existing active or deactivated image of that name and owner is
// returned as is; a queued one receives the data; otherwise a new image is
// created from img's writable attributes. The data goes through the same
// checks as an upload. It acts for the operator, so it needs no
// credentials and no quota applies. Faults: Invalid, Conflict, TooLarge,
// Internal.
func (s *Service) RegisterFile(ctx context.Context, img Image, path string) (*Image, error) {
	if img.Name == "" {
		return nil, fault.Invalidf("RegisterFile: the image needs a name.")
	}
	existing, err := s.st.imagesByNameOwner(ctx, img.Name, img.Owner)
	if err != nil {
		return nil, err
	}
	var target *Image
	if len(existing) > 0 {
		switch cur := existing[0]; cur.Status {
		case StatusActive, StatusDeactivated:
			out, _, err := s.st.image(ctx, cur.ID, "")
			return out, err
		case StatusQueued:
			target = &cur
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fault.Invalidf("RegisterFile: %s is not a regular file.", path)
	}
	if target == nil {
		target = newImage(img, img.Owner, s.now())
		target.ID = newID()
		if err := validateImage(target); err != nil {
			return nil, err
		}
		if err := s.st.createImage(ctx, target, -1); err != nil {
			return nil, err
		}
	}
	return s.receive(ctx, target, f, st.Size(), -1)
}
