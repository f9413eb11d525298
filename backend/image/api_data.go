package image

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// upload is PUT /v2/images/{id}/file. The body streams straight into the
// service, which never holds it in memory.
func (a *apiHandler) upload(w http.ResponseWriter, r *http.Request) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/octet-stream" {
		failStatus(w, http.StatusUnsupportedMediaType, "Content type "+strings.TrimSpace(r.Header.Get("Content-Type"))+
			" is not supported; image data must be sent as application/octet-stream.")
		return
	}
	size := r.ContentLength // -1 when unknown (chunked)
	if h := r.Header.Get("X-Openstack-Image-Size"); h != "" {
		n, err := strconv.ParseInt(h, 10, 64)
		if err != nil || n < 0 {
			a.fail(w, r, fault.Invalidf("Invalid or missing image size in request headers."))
			return
		}
		size = n
	}
	if _, err := a.s.Upload(r.Context(), chi.URLParam(r, "id"), r.Body, size); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// download is GET /v2/images/{id}/file, with a single byte range when asked.
func (a *apiHandler) download(w http.ResponseWriter, r *http.Request) {
	rc, img, err := a.s.OpenContent(r.Context(), chi.URLParam(r, "id"))
	if errors.Is(err, ErrNoData) {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	defer rc.Close()
	var size int64
	if img.Size != nil {
		size = *img.Size
	}
	start, length, partial, ok := parseRange(r.Header.Get("Range"), size)
	if !ok {
		w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
		failStatus(w, http.StatusRequestedRangeNotSatisfiable, "The requested range is not satisfiable for an image of "+
			strconv.FormatInt(size, 10)+" bytes.")
		return
	}
	if start > 0 {
		if _, err := rc.Seek(start, io.SeekStart); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	if img.Checksum != "" {
		h.Set("Content-MD5", img.Checksum)
	}
	h.Set("Content-Length", strconv.FormatInt(length, 10))
	status := http.StatusOK
	if partial {
		h.Set("Content-Range", "bytes "+strconv.FormatInt(start, 10)+"-"+strconv.FormatInt(start+length-1, 10)+"/"+strconv.FormatInt(size, 10))
		status = http.StatusPartialContent
	}
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	_, _ = io.CopyN(w, rc, length)
}

// parseRange reads a Range header of one byte range (bytes=a-b, bytes=a-
// or bytes=-n) against size: the start and length to send, whether it is
// partial, and false when the range cannot be satisfied (several ranges,
// malformed, or outside the data), as Glance answers 416 then.
func parseRange(h string, size int64) (start, length int64, partial, ok bool) {
	if h == "" {
		return 0, size, false, true
	}
	spec, found := strings.CutPrefix(strings.TrimSpace(h), "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false, false
	}
	a, b, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false, false
	}
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	switch {
	case a == "" && b == "":
		return 0, 0, false, false
	case a == "": // suffix: the last n bytes
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 || size == 0 {
			return 0, 0, false, false
		}
		n = min(n, size)
		return size - n, n, true, true
	}
	first, err := strconv.ParseInt(a, 10, 64)
	if err != nil || first < 0 || first >= size {
		return 0, 0, false, false
	}
	last := size - 1
	if b != "" {
		l, err := strconv.ParseInt(b, 10, 64)
		if err != nil || l < first {
			return 0, 0, false, false
		}
		last = min(l, size-1)
	}
	return first, last - first + 1, true, true
}
