package identity

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/nimbus-cloud/nimbus/backend/platform/db"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

// ---- users ----

const userCols = `id, name, domain_id, default_project_id, description, email, enabled, password_changed_at, created_at`

func scanUser(r db.Scanner) (User, error) {
	var u User
	var dp, pwAt sql.NullString
	var created string
	err := r.Scan(&u.ID, &u.Name, &u.DomainID, &dp, &u.Description, &u.Email, &u.Enabled, &pwAt, &created)
	u.DefaultProjectID = dp.String
	if pwAt.Valid {
		t := parseTime(pwAt.String)
		u.PasswordSetAt = &t
	}
	u.CreatedAt = parseTime(created)
	return u, err
}

func getUser(ctx context.Context, q db.Querier, id string) (*User, error) {
	u, err := scanUser(q.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE id = ?`, id))
	if err != nil {
		return nil, db.NotFound(err, fmt.Sprintf("Could not find user: %s.", id))
	}
	return &u, nil
}

func (st *store) user(ctx context.Context, id string) (*User, error) { return getUser(ctx, st.db, id) }

// userWithHash returns a user and its password hash, for authentication.
func (st *store) userWithHash(ctx context.Context, where string, args ...any) (*User, string, error) {
	var hash string
	var id string
	err := st.db.QueryRowContext(ctx, `SELECT id, password_hash FROM users WHERE `+where, args...).Scan(&id, &hash)
	if err != nil {
		return nil, "", db.NotFound(err, "Could not find user.")
	}
	u, err := st.user(ctx, id)
	return u, hash, err
}

func (st *store) listUsers(ctx context.Context, f UserFilter) ([]User, bool, error) {
	var where []string
	var args []any
	if f.Name != "" {
		where, args = append(where, "name = ?"), append(args, f.Name)
	}
	if f.DomainID != "" {
		where, args = append(where, "domain_id = ?"), append(args, f.DomainID)
	}
	if f.Enabled != nil {
		where, args = append(where, "enabled = ?"), append(args, db.Bool(*f.Enabled))
	}
	q, args, n := page(where, args, f.ListOptions)
	rows, err := st.db.QueryContext(ctx, `SELECT `+userCols+` FROM users`+q, args...)
	if err != nil {
		return nil, false, err
	}
	return collect(rows, n, scanUser)
}

func insertUser(ctx context.Context, q db.Querier, u *User, hash string) error {
	if _, err := getDomain(ctx, q, u.DomainID); err != nil {
		return err
	}
	var pwAt sql.NullString
	if u.PasswordSetAt != nil {
		pwAt = nullStr(db.FormatTime(*u.PasswordSetAt))
	}
	_, err := q.ExecContext(ctx, `INSERT INTO users (id, name, domain_id, enabled, default_project_id, description, email,
		password_hash, password_changed_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.Name, u.DomainID, db.Bool(u.Enabled), nullStr(u.DefaultProjectID), u.Description, u.Email, hash, pwAt,
		db.FormatTime(u.CreatedAt))
	return conflict(err, "user", u.Name, u.DomainID)
}

func (st *store) createUser(ctx context.Context, u *User, hash string) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error { return insertUser(ctx, tx, u, hash) })
}

// updateUser applies u, with hash replacing the password hash when not
// empty, and returns the user before and after.
func (st *store) updateUser(ctx context.Context, id string, u UserUpdate, hash string, now time.Time) (before, after *User, err error) {
	err = st.txGuarded(ctx, func(tx *sql.Tx) error {
		if before, err = getUser(ctx, tx, id); err != nil {
			return err
		}
		n := *before
		if u.Name != nil {
			n.Name = *u.Name
		}
		if u.Description != nil {
			n.Description = *u.Description
		}
		if u.Email != nil {
			n.Email = *u.Email
		}
		if u.Enabled != nil {
			n.Enabled = *u.Enabled
		}
		if u.DefaultProjectID != nil {
			n.DefaultProjectID = *u.DefaultProjectID
			if n.DefaultProjectID != "" {
				if _, err := getProject(ctx, tx, n.DefaultProjectID); err != nil {
					return err
				}
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET name = ?, description = ?, email = ?, enabled = ?,
			default_project_id = ? WHERE id = ?`, n.Name, n.Description, n.Email, db.Bool(n.Enabled),
			nullStr(n.DefaultProjectID), id); err != nil {
			return conflict(err, "user", n.Name, n.DomainID)
		}
		if hash != "" {
			if err := setPasswordHash(ctx, tx, id, hash, now); err != nil {
				return err
			}
			n.PasswordSetAt = &now
		}
		after = &n
		return nil
	})
	return before, after, err
}

func setPasswordHash(ctx context.Context, q db.Querier, id, hash string, now time.Time) error {
	_, err := q.ExecContext(ctx, `UPDATE users SET password_hash = ?, password_changed_at = ? WHERE id = ?`,
		hash, db.FormatTime(now), id)
	return err
}

// setPassword replaces a user's password hash when it still equals old, so
// two concurrent changes cannot both pass the old-password check.
func (st *store) setPassword(ctx context.Context, id, old, hash string, now time.Time) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = ?, password_changed_at = ? WHERE id = ? AND password_hash = ?`,
			hash, db.FormatTime(now), id, old)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fault.Unauthorizedf("%s", msgUnauthorized)
		}
		return nil
	})
}

func (st *store) deleteUser(ctx context.Context, id string) error {
	return st.txGuarded(ctx, func(tx *sql.Tx) error {
		if _, err := getUser(ctx, tx, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM role_assignments WHERE actor_type = 'user' AND actor_id = ?`, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM users WHERE id = ?`, id); err != nil {
			return fmt.Errorf("delete user %s: %w", id, err)
		}
		return nil
	})
}

// ---- groups ----

const groupCols = `id, name, domain_id, description`

func scanGroup(r db.Scanner) (Group, error) {
	var g Group
	err := r.Scan(&g.ID, &g.Name, &g.DomainID, &g.Description)
	return g, err
}

func getGroup(ctx context.Context, q db.Querier, id string) (*Group, error) {
	g, err := scanGroup(q.QueryRowContext(ctx, `SELECT `+groupCols+` FROM groups WHERE id = ?`, id))
	if err != nil {
		return nil, db.NotFound(err, fmt.Sprintf("Could not find group: %s.", id))
	}
	return &g, nil
}

func (st *store) group(ctx context.Context, id string) (*Group, error) {
	return getGroup(ctx, st.db, id)
}

func (st *store) listGroups(ctx context.Context, f GroupFilter) ([]Group, bool, error) {
	var where []string
	var args []any
	if f.Name != "" {
		where, args = append(where, "name = ?"), append(args, f.Name)
	}
	if f.DomainID != "" {
		where, args = append(where, "domain_id = ?"), append(args, f.DomainID)
	}
	q, args, n := page(where, args, f.ListOptions)
	rows, err := st.db.QueryContext(ctx, `SELECT `+groupCols+` FROM groups`+q, args...)
	if err != nil {
		return nil, false, err
	}
	return collect(rows, n, scanGroup)
}

func (st *store) createGroup(ctx context.Context, g *Group, now time.Time) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := getDomain(ctx, tx, g.DomainID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO groups (id, name, domain_id, description, created_at) VALUES (?, ?, ?, ?, ?)`,
			g.ID, g.Name, g.DomainID, g.Description, db.FormatTime(now))
		return conflict(err, "group", g.Name, g.DomainID)
	})
}

func (st *store) updateGroup(ctx context.Context, id string, u GroupUpdate) (*Group, error) {
	var g *Group
	err := st.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if g, err = getGroup(ctx, tx, id); err != nil {
			return err
		}
		if u.Name != nil {
			g.Name = *u.Name
		}
		if u.Description != nil {
			g.Description = *u.Description
		}
		_, err = tx.ExecContext(ctx, `UPDATE groups SET name = ?, description = ? WHERE id = ?`, g.Name, g.Description, id)
		return conflict(err, "group", g.Name, g.DomainID)
	})
	return g, err
}

// deleteGroup removes a group and its assignments and returns its members,
// whose tokens the caller revokes.
func (st *store) deleteGroup(ctx context.Context, id string) ([]string, error) {
	var members []string
	err := st.txGuarded(ctx, func(tx *sql.Tx) error {
		if _, err := getGroup(ctx, tx, id); err != nil {
			return err
		}
		var err error
		if members, err = groupMemberIDs(ctx, tx, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM role_assignments WHERE actor_type = 'group' AND actor_id = ?`, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM groups WHERE id = ?`, id); err != nil {
			return fmt.Errorf("delete group %s: %w", id, err)
		}
		return nil
	})
	return members, err
}

func groupMemberIDs(ctx context.Context, q db.Querier, groupID string) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT user_id FROM group_members WHERE group_id = ? ORDER BY user_id`, groupID)
	if err != nil {
		return nil, err
	}
	ids, _, err := collect(rows, 0, func(r db.Scanner) (string, error) {
		var s string
		return s, r.Scan(&s)
	})
	return ids, err
}

func (st *store) addGroupMember(ctx context.Context, groupID, userID string) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := getGroup(ctx, tx, groupID); err != nil {
			return err
		}
		if _, err := getUser(ctx, tx, userID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO group_members (group_id, user_id) VALUES (?, ?) ON CONFLICT DO NOTHING`,
			groupID, userID)
		return err
	})
}

func (st *store) removeGroupMember(ctx context.Context, groupID, userID string) error {
	return st.txGuarded(ctx, func(tx *sql.Tx) error {
		if _, err := getGroup(ctx, tx, groupID); err != nil {
			return err
		}
		if _, err := getUser(ctx, tx, userID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM group_members WHERE group_id = ? AND user_id = ?`, groupID, userID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fault.NotFoundf("Could not find user %s in group %s.", userID, groupID)
		}
		return nil
	})
}

func (st *store) isGroupMember(ctx context.Context, groupID, userID string) (bool, error) {
	var one int
	err := st.db.QueryRowContext(ctx, `SELECT 1 FROM group_members WHERE group_id = ? AND user_id = ?`, groupID, userID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

func (st *store) groupMembers(ctx context.Context, groupID string) ([]User, error) {
	if _, err := st.group(ctx, groupID); err != nil {
		return nil, err
	}
	rows, err := st.db.QueryContext(ctx, `SELECT `+userCols+` FROM users WHERE id IN
		(SELECT user_id FROM group_members WHERE group_id = ?) ORDER BY id`, groupID)
	if err != nil {
		return nil, err
	}
	us, _, err := collect(rows, 0, scanUser)
	if us == nil {
		us = []User{}
	}
	return us, err
}

func (st *store) userGroups(ctx context.Context, userID string) ([]Group, error) {
	if _, err := st.user(ctx, userID); err != nil {
		return nil, err
	}
	rows, err := st.db.QueryContext(ctx, `SELECT `+groupCols+` FROM groups WHERE id IN
		(SELECT group_id FROM group_members WHERE user_id = ?) ORDER BY id`, userID)
	if err != nil {
		return nil, err
	}
	gs, _, err := collect(rows, 0, scanGroup)
	if gs == nil {
		gs = []Group{}
	}
	return gs, err
}
