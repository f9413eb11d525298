package image

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nimbus-cloud/nimbus/backend/platform/db"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// store holds every SQL statement of the image service. Each method that
// writes owns its transaction (db.Tx, BEGIN IMMEDIATE); callbacks passed to
// it run inside that transaction, so a check and the write it guards see
// one state. Reads run on the pool. Helpers take a db.Querier.
type store struct {
	db *db.DB
}

// timeLayout is fixed-width so stored timestamps sort as text.
const timeLayout = "2006-01-02T15:04:05.000000Z"

func fmtTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func parseTime(s string) time.Time {
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		t, _ = db.ParseTime(s)
	}
	return t
}

func placeholders(n int) string { return strings.TrimSuffix(strings.Repeat("?,", n), ",") }

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// errUploadGone reports that the image left the saving status while its
// data was being received: it was deleted (or killed) meanwhile.
var errUploadGone = errors.New("image left the saving status during the upload")

const imageCols = `id, name, status, visibility, owner, protected, os_hidden, disk_format, container_format,
	min_disk, min_ram, size, virtual_size, checksum, os_hash_algo, os_hash_value, created_at, updated_at`

func scanImage(r db.Scanner) (Image, error) {
	var img Image
	var size, vsize sql.NullInt64
	var created, updated string
	err := r.Scan(&img.ID, &img.Name, &img.Status, &img.Visibility, &img.Owner, &img.Protected, &img.Hidden,
		&img.DiskFormat, &img.ContainerFormat, &img.MinDisk, &img.MinRAM, &size, &vsize,
		&img.Checksum, &img.HashAlgo, &img.HashValue, &created, &updated)
	if size.Valid {
		img.Size = &size.Int64
	}
	if vsize.Valid {
		img.VirtualSize = &vsize.Int64
	}
	img.CreatedAt, img.UpdatedAt = parseTime(created), parseTime(updated)
	return img, err
}

// getImage loads a non-deleted image with its tags and properties.
func getImage(ctx context.Context, q db.Querier, id string) (*Image, error) {
	img, err := scanImage(q.QueryRowContext(ctx, `SELECT `+imageCols+` FROM images WHERE id = ? AND status <> ?`, id, StatusDeleted))
	if err != nil {
		return nil, db.NotFound(err, fmt.Sprintf("No image found with ID %s", id))
	}
	imgs := []Image{img}
	if err := loadDetails(ctx, q, imgs); err != nil {
		return nil, err
	}
	return &imgs[0], nil
}

// loadDetails fills the tags and properties of imgs.
func loadDetails(ctx context.Context, q db.Querier, imgs []Image) error {
	if len(imgs) == 0 {
		return nil
	}
	idx := make(map[string]int, len(imgs))
	ids := make([]any, len(imgs))
	for i := range imgs {
		idx[imgs[i].ID] = i
		ids[i] = imgs[i].ID
		imgs[i].Tags = []string{}
		imgs[i].Properties = map[string]string{}
	}
	in := placeholders(len(ids))
	rows, err := q.QueryContext(ctx, `SELECT image_id, tag FROM image_tags WHERE image_id IN (`+in+`) ORDER BY tag`, ids...)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id, tag string
		if err := rows.Scan(&id, &tag); err != nil {
			rows.Close()
			return err
		}
		imgs[idx[id]].Tags = append(imgs[idx[id]].Tags, tag)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	rows, err = q.QueryContext(ctx, `SELECT image_id, name, value FROM image_properties WHERE image_id IN (`+in+`)`, ids...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id, k, v string
		if err := rows.Scan(&id, &k, &v); err != nil {
			return err
		}
		imgs[idx[id]].Properties[k] = v
	}
	return rows.Err()
}

// memberStatusOf is project's membership status on an image, "" if none.
func memberStatusOf(ctx context.Context, q db.Querier, imageID, project string) (string, error) {
	if project == "" {
		return "", nil
	}
	var st string
	err := q.QueryRowContext(ctx, `SELECT status FROM image_members WHERE image_id = ? AND member = ?`, imageID, project).Scan(&st)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return st, err
}

// image returns a non-deleted image and viewer's membership status on it.
func (st *store) image(ctx context.Context, id, viewer string) (*Image, string, error) {
	img, err := getImage(ctx, st.db, id)
	if err != nil {
		return nil, "", err
	}
	ms, err := memberStatusOf(ctx, st.db, id, viewer)
	return img, ms, err
}

// usage is how many non-deleted images owner has and their total size.
func usage(ctx context.Context, q db.Querier, owner, exceptID string) (int, int64, error) {
	var n int
	var bytes int64
	err := q.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(size), 0) FROM images WHERE owner = ? AND status <> ? AND id <> ?`,
		owner, StatusDeleted, exceptID).Scan(&n, &bytes)
	return n, bytes, err
}

// bytesUsed is the total data size of owner's images other than exceptID.
func (st *store) bytesUsed(ctx context.Context, owner, exceptID string) (int64, error) {
	_, b, err := usage(ctx, st.db, owner, exceptID)
	return b, err
}

// createImage inserts img (ID, timestamps and status set) after checking,
// in the same transaction, that its owner has fewer than quota images
// (quota < 0: no limit), so parallel creates cannot overshoot.
func (st *store) createImage(ctx context.Context, img *Image, quota int) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error {
		if quota >= 0 {
			n, _, err := usage(ctx, tx, img.Owner, "")
			if err != nil {
				return err
			}
			if n >= quota {
				return fault.New(fault.TooLarge, "The image count quota of %d images for project %s is reached.", quota, img.Owner)
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO images (id, name, status, visibility, owner, protected, os_hidden,
			disk_format, container_format, min_disk, min_ram, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`,
			img.ID, img.Name, img.Status, img.Visibility, img.Owner, db.Bool(img.Protected), db.Bool(img.Hidden),
			img.DiskFormat, img.ContainerFormat, img.MinDisk, img.MinRAM, fmtTime(img.CreatedAt), fmtTime(img.UpdatedAt))
		if db.IsUniqueViolation(err) {
			return fault.Wrap(fault.Conflict, err, fmt.Sprintf("Image with identifier %s already exists!", img.ID))
		}
		if err != nil {
			return err
		}
		return writeDetails(ctx, tx, img)
	})
}

// writeDetails replaces the tags and properties of img.
func writeDetails(ctx context.Context, tx *sql.Tx, img *Image) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM image_tags WHERE image_id = ?`, img.ID); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM image_properties WHERE image_id = ?`, img.ID); err != nil {
		return err
	}
	for _, t := range img.Tags {
		if _, err := tx.ExecContext(ctx, `INSERT INTO image_tags (image_id, tag) VALUES (?, ?) ON CONFLICT DO NOTHING`, img.ID, t); err != nil {
			return err
		}
	}
	for k, v := range img.Properties {
		if _, err := tx.ExecContext(ctx, `INSERT INTO image_properties (image_id, name, value) VALUES (?, ?, ?)`, img.ID, k, v); err != nil {
			return err
		}
	}
	return nil
}

// updateImage loads image id and viewer's membership status on it, lets
// fn change the image's writable attributes (or refuse), and saves the
// result, all in one transaction. fn returning errNoChange saves nothing.
func (st *store) updateImage(ctx context.Context, id, viewer string, now time.Time, fn func(img *Image, member string) error) (*Image, error) {
	var out *Image
	err := st.db.Tx(ctx, func(tx *sql.Tx) error {
		img, err := getImage(ctx, tx, id)
		if err != nil {
			return err
		}
		ms, err := memberStatusOf(ctx, tx, id, viewer)
		if err != nil {
			return err
		}
		if err := fn(img, ms); err != nil {
			if errors.Is(err, errNoChange) {
				out = img
				return nil
			}
			return err
		}
		img.UpdatedAt = now
		_, err = tx.ExecContext(ctx, `UPDATE images SET name = ?, status = ?, visibility = ?, owner = ?, protected = ?,
			os_hidden = ?, disk_format = ?, container_format = ?, min_disk = ?, min_ram = ?, updated_at = ? WHERE id = ?`,
			img.Name, img.Status, img.Visibility, img.Owner, db.Bool(img.Protected), db.Bool(img.Hidden), img.DiskFormat,
			img.ContainerFormat, img.MinDisk, img.MinRAM, fmtTime(img.UpdatedAt), img.ID)
		if err != nil {
			return err
		}
		if err := writeDetails(ctx, tx, img); err != nil {
			return err
		}
		out = img
		return nil
	})
	return out, err
}

// errNoChange lets an updateImage callback accept without writing.
var errNoChange = errors.New("no change")

// contentInfo describes received image data.
type contentInfo struct {
	Size        int64
	VirtualSize int64
	MD5         string
	SHA512      string
}

// finishUpload makes image id active with content c, in one transaction:
// the image must still be saving (else errUploadGone), its owner's images
// must stay within quotaBytes (< 0: no limit) with this data, and place is
// called to put the content file in place before the commit.
func (st *store) finishUpload(ctx context.Context, id string, c contentInfo, quotaBytes int64, now time.Time, place func() error) (*Image, error) {
	var out *Image
	err := st.db.Tx(ctx, func(tx *sql.Tx) error {
		img, err := getImage(ctx, tx, id)
		if fault.Is(err, fault.NotFound) {
			return errUploadGone
		}
		if err != nil {
			return err
		}
		if img.Status != StatusSaving {
			return errUploadGone
		}
		if quotaBytes >= 0 {
			_, used, err := usage(ctx, tx, img.Owner, img.ID)
			if err != nil {
				return err
			}
			if used+c.Size > quotaBytes {
				return overBytesQuota(used, quotaBytes, img.Owner, c.Size)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO image_content (hash, size, created_at) VALUES (?, ?, ?) ON CONFLICT (hash) DO NOTHING`,
			c.SHA512, c.Size, fmtTime(now)); err != nil {
			return err
		}
		if err := place(); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE images SET status = ?, size = ?, virtual_size = ?, checksum = ?, os_hash_algo = ?,
			os_hash_value = ?, content_hash = ?, updated_at = ? WHERE id = ?`,
			StatusActive, c.Size, c.VirtualSize, c.MD5, HashAlgo, c.SHA512, c.SHA512, fmtTime(now), id); err != nil {
			return err
		}
		out, err = getImage(ctx, tx, id)
		return err
	})
	return out, err
}

// deleteImage turns image id into a tombstone after check accepts it. When
// no other image references its content any more, the content row is
// removed and free is called with the hash inside the transaction, so a
// parallel upload of the same bytes either commits before (and keeps the
// row) or after (and re-creates it).
func (st *store) deleteImage(ctx context.Context, id, viewer string, now time.Time,
	check func(img *Image, member string) error, free func(hash string) error) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error {
		img, err := getImage(ctx, tx, id)
		if err != nil {
			return err
		}
		ms, err := memberStatusOf(ctx, tx, id, viewer)
		if err != nil {
			return err
		}
		if err := check(img, ms); err != nil {
			return err
		}
		var hash sql.NullString
		if err := tx.QueryRowContext(ctx, `SELECT content_hash FROM images WHERE id = ?`, id).Scan(&hash); err != nil {
			return err
		}
		for _, q := range []string{
			`DELETE FROM image_tags WHERE image_id = ?`,
			`DELETE FROM image_properties WHERE image_id = ?`,
			`DELETE FROM image_members WHERE image_id = ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE images SET status = ?, content_hash = NULL, protected = 0, updated_at = ?, deleted_at = ? WHERE id = ?`,
			StatusDeleted, fmtTime(now), fmtTime(now), id); err != nil {
			return err
		}
		if !hash.Valid || hash.String == "" {
			return nil
		}
		var refs int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM images WHERE content_hash = ?`, hash.String).Scan(&refs); err != nil {
			return err
		}
		if refs > 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM image_content WHERE hash = ?`, hash.String); err != nil {
			return err
		}
		return free(hash.String)
	})
}

// contentRefs is how many images reference the content hash, and whether
// the content row exists.
func (st *store) contentRefs(ctx context.Context, hash string) (int, bool, error) {
	var refs, rows int
	err := st.db.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM images WHERE content_hash = ?), (SELECT COUNT(*) FROM image_content WHERE hash = ?)`,
		hash, hash).Scan(&refs, &rows)
	return refs, rows > 0, err
}

// imagesByNameOwner lists the non-deleted images named name owned by
// owner, newest first.
func (st *store) imagesByNameOwner(ctx context.Context, name, owner string) ([]Image, error) {
	rows, err := st.db.QueryContext(ctx, `SELECT `+imageCols+` FROM images WHERE name = ? AND owner = ? AND status <> ?
		ORDER BY created_at DESC, id DESC`, name, owner, StatusDeleted)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Image
	for rows.Next() {
		img, err := scanImage(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, img)
	}
	return out, rows.Err()
}
