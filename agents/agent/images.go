package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nimbus-cloud/nimbus/agents/agentapi"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// maxImageTransfer bounds one image download or upload.
const maxImageTransfer = 6 * time.Hour

// imageCache is the host's base-image cache, StateDir/images/<id>. A file
// appears there only complete and verified (written to a temporary name,
// checked against the image's sha512, then renamed), so its presence is
// proof enough. Images are immutable once active, so nothing expires.
type imageCache struct {
	dir  string
	ctl  *controller
	base context.Context
	log  *slog.Logger
	wg   *sync.WaitGroup

	mu    sync.Mutex
	calls map[string]*fetchCall
}

// fetchCall is one download that concurrent fetches of an image share.
type fetchCall struct {
	done chan struct{}
	path string
	err  error
}

func newImageCache(base context.Context, dir string, ctl *controller, log *slog.Logger, wg *sync.WaitGroup) *imageCache {
	return &imageCache{dir: dir, ctl: ctl, base: base, log: log, wg: wg, calls: map[string]*fetchCall{}}
}

// Fetch returns the cached path of img, downloading it once. The download
// runs on the agent's lifetime, not the caller's, so one cancelled spawn
// does not fail the others waiting for the same image.
func (c *imageCache) Fetch(ctx context.Context, img agentapi.Image) (string, error) {
	if !ValidID(img.ID) {
		return "", fault.Invalidf("%q is not an image ID.", img.ID)
	}
	want, err := hex.DecodeString(strings.ToLower(img.Checksum))
	if err != nil || len(want) != sha512.Size {
		return "", fault.Invalidf("Image %s has no sha512 checksum to verify its content with.", img.ID)
	}
	path := filepath.Join(c.dir, img.ID)
	c.mu.Lock()
	if _, err := os.Stat(path); err == nil {
		c.mu.Unlock()
		return path, nil
	}
	call := c.calls[img.ID]
	if call == nil {
		call = &fetchCall{done: make(chan struct{})}
		c.calls[img.ID] = call
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			call.err = c.download(img, want, path)
			if call.err == nil {
				call.path = path
			}
			c.mu.Lock()
			delete(c.calls, img.ID)
			c.mu.Unlock()
			close(call.done)
		}()
	}
	c.mu.Unlock()
	select {
	case <-call.done:
		return call.path, call.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// download streams image content from the controller into the cache.
func (c *imageCache) download(img agentapi.Image, want []byte, path string) error {
	ctx, cancel := context.WithTimeout(c.base, maxImageTransfer)
	defer cancel()
	cred := c.ctl.credential()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.ctl.base+agentapi.PathImages+url.PathEscape(img.ID)+"/file", http.NoBody)
	if err != nil {
		return fault.Wrap(fault.Internal, err, "build image request")
	}
	agentapi.Sign(req, cred.AgentID, cred.key, nil, time.Now())
	start := time.Now()
	resp, err := c.ctl.bulk.Do(req)
	if err != nil {
		return fault.Wrap(fault.Unavailable, err, fmt.Sprintf("Image %s could not be downloaded from the controller.", img.ID))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return answerError(resp)
	}
	tmp, err := os.CreateTemp(c.dir, ".tmp-"+img.ID+"-*")
	if err != nil {
		return fault.Wrap(fault.Internal, err, "create image cache file")
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	h := sha512.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), resp.Body)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fault.Wrap(fault.Unavailable, err, fmt.Sprintf("Image %s could not be downloaded from the controller.", img.ID))
	}
	if (img.Size > 0 && n != img.Size) || !bytes.Equal(h.Sum(nil), want) {
		return fault.Invalidf("The content of image %s does not match its size and sha512 checksum.", img.ID)
	}
	// qemu runs as an unprivileged user and reads base images as backing
	// files; libvirt labels the disks of running domains, not their backing
	// files' directories.
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fault.Wrap(fault.Internal, err, "set image cache file mode")
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fault.Wrap(fault.Internal, err, "store image in cache")
	}
	c.log.Info("image cached", "image_id", img.ID, "bytes", n, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// Upload sends the file at path as image id's content. The body is
// streamed, so its size and SHA-256 go into the signed query instead of the
// signature's body hash, and the controller checks the content against them.
func (c *imageCache) Upload(ctx context.Context, id, path string) error {
	if !ValidID(id) {
		return fault.Invalidf("%q is not an image ID.", id)
	}
	f, err := os.Open(path)
	if err != nil {
		return fault.Wrap(fault.Internal, err, "open upload")
	}
	defer f.Close()
	h := sha256.New()
	size, err := io.Copy(h, f)
	if err != nil {
		return fault.Wrap(fault.Internal, err, "hash upload")
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fault.Wrap(fault.Internal, err, "rewind upload")
	}
	q := url.Values{"size": {strconv.FormatInt(size, 10)}, "sha256": {hex.EncodeToString(h.Sum(nil))}}
	ctx, cancel := context.WithTimeout(ctx, maxImageTransfer)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut,
		c.ctl.base+agentapi.PathImages+url.PathEscape(id)+"/file?"+q.Encode(), io.NopCloser(f))
	if err != nil {
		return fault.Wrap(fault.Internal, err, "build upload request")
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	cred := c.ctl.credential()
	agentapi.Sign(req, cred.AgentID, cred.key, nil, time.Now())
	resp, err := c.ctl.bulk.Do(req)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return err
		}
		return fault.Wrap(fault.Unavailable, err, fmt.Sprintf("The snapshot could not be uploaded to image %s.", id))
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return answerError(resp)
	}
	c.log.Info("snapshot uploaded", "image_id", id, "bytes", size)
	return nil
}
