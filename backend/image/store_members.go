package image

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/nimbus-cloud/nimbus/backend/platform/db"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

const memberCols = `image_id, member, status, created_at, updated_at`

func scanMember(r db.Scanner) (Member, error) {
	var m Member
	var created, updated string
	err := r.Scan(&m.ImageID, &m.MemberID, &m.Status, &created, &updated)
	m.CreatedAt, m.UpdatedAt = parseTime(created), parseTime(updated)
	return m, err
}

func getMember(ctx context.Context, q db.Querier, imageID, memberID string) (*Member, error) {
	m, err := scanMember(q.QueryRowContext(ctx, `SELECT `+memberCols+` FROM image_members WHERE image_id = ? AND member = ?`, imageID, memberID))
	if err != nil {
		return nil, db.NotFound(err, fmt.Sprintf("%s is not a member of image %s.", memberID, imageID))
	}
	return &m, nil
}

// withImage runs fn in a transaction after loading image id and viewer's
// membership on it and letting check accept them.
func (st *store) withImage(ctx context.Context, id, viewer string, check func(img *Image, member string) error, fn func(tx *sql.Tx, img *Image) error) error {
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
		return fn(tx, img)
	})
}

// addMember shares image id with project member (status pending), within
// a limit of max members per image.
func (st *store) addMember(ctx context.Context, id, member, viewer string, max int, now time.Time, check func(*Image, string) error) (*Member, error) {
	var out *Member
	err := st.withImage(ctx, id, viewer, check, func(tx *sql.Tx, img *Image) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM image_members WHERE image_id = ?`, id).Scan(&n); err != nil {
			return err
		}
		if n >= max {
			return fault.New(fault.TooLarge, "Maximum number of members exceeded: an image may have at most %d members.", max)
		}
		m := Member{ImageID: id, MemberID: member, Status: MemberPending, CreatedAt: now, UpdatedAt: now}
		_, err := tx.ExecContext(ctx, `INSERT INTO image_members (`+memberCols+`) VALUES (?, ?, ?, ?, ?)`,
			m.ImageID, m.MemberID, m.Status, fmtTime(now), fmtTime(now))
		if db.IsUniqueViolation(err) {
			return fault.Wrap(fault.Conflict, err, fmt.Sprintf("Member %s already exists for image %s.", member, id))
		}
		out = &m
		return err
	})
	return out, err
}

// members lists image id's members, or only viewer's own membership when
// all is false.
func (st *store) members(ctx context.Context, id, viewer string, all bool, check func(*Image, string) error) ([]Member, error) {
	var out []Member
	err := st.withImage(ctx, id, viewer, check, func(tx *sql.Tx, img *Image) error {
		q := `SELECT ` + memberCols + ` FROM image_members WHERE image_id = ?`
		args := []any{id}
		if !all {
			q += ` AND member = ?`
			args = append(args, viewer)
		}
		rows, err := tx.QueryContext(ctx, q+` ORDER BY created_at, member`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			m, err := scanMember(rows)
			if err != nil {
				return err
			}
			out = append(out, m)
		}
		return rows.Err()
	})
	return out, err
}

// member returns one membership of image id.
func (st *store) member(ctx context.Context, id, memberID, viewer string, check func(*Image, string) error) (*Member, error) {
	var out *Member
	err := st.withImage(ctx, id, viewer, check, func(tx *sql.Tx, img *Image) error {
		var err error
		out, err = getMember(ctx, tx, id, memberID)
		return err
	})
	return out, err
}

// updateMember sets the status of one membership of image id.
func (st *store) updateMember(ctx context.Context, id, memberID, status, viewer string, now time.Time, check func(*Image, string) error) (*Member, error) {
	var out *Member
	err := st.withImage(ctx, id, viewer, check, func(tx *sql.Tx, img *Image) error {
		m, err := getMember(ctx, tx, id, memberID)
		if err != nil {
			return err
		}
		m.Status, m.UpdatedAt = status, now
		if _, err := tx.ExecContext(ctx, `UPDATE image_members SET status = ?, updated_at = ? WHERE image_id = ? AND member = ?`,
			status, fmtTime(now), id, memberID); err != nil {
			return err
		}
		out = m
		return nil
	})
	return out, err
}

// deleteMember removes one membership of image id.
func (st *store) deleteMember(ctx context.Context, id, memberID, viewer string, check func(*Image, string) error) error {
	return st.withImage(ctx, id, viewer, check, func(tx *sql.Tx, img *Image) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM image_members WHERE image_id = ? AND member = ?`, id, memberID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fault.NotFoundf("%s is not a member of image %s.", memberID, id)
		}
		return nil
	})
}
