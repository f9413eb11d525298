package image

import (
	"context"
	"slices"
	"strings"

	"github.com/nimbus-cloud/nimbus/backend/platform/db"
)

// viewer is who a listing is for: a project, or an admin who sees all.
type viewer struct {
	project string
	admin   bool
}

// sortColumns maps Glance's sort keys to SQL expressions that are never
// NULL, so keyset pagination can compare them.
var sortColumns = map[string]string{
	"name":             "name",
	"status":           "status",
	"container_format": "container_format",
	"disk_format":      "disk_format",
	"size":             "COALESCE(size, -1)",
	"id":               "id",
	"created_at":       "created_at",
	"updated_at":       "updated_at",
}

// sortValue is the value of a sort key for img, matching sortColumns.
func sortValue(img *Image, key string) any {
	switch key {
	case "name":
		return img.Name
	case "status":
		return img.Status
	case "container_format":
		return img.ContainerFormat
	case "disk_format":
		return img.DiskFormat
	case "size":
		if img.Size == nil {
			return int64(-1)
		}
		return *img.Size
	case "id":
		return img.ID
	case "created_at":
		return fmtTime(img.CreatedAt)
	case "updated_at":
		return fmtTime(img.UpdatedAt)
	}
	return nil
}

var timeOps = map[string]string{"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}

// listImages returns at most f.Limit images v may see that match f, after
// marker (already checked visible) in f's sort order, and whether more
// remain. f's sort keys, directions and limit are already validated.
func (st *store) listImages(ctx context.Context, v viewer, f ListFilter, marker *Image) ([]Image, bool, error) {
	where := []string{"status <> ?"}
	args := []any{StatusDeleted}
	add := func(clause string, a ...any) {
		where = append(where, clause)
		args = append(args, a...)
	}
	in := func(col string, vals []string) {
		if len(vals) > 0 {
			add(col+" IN ("+placeholders(len(vals))+")", anys(vals)...)
		}
	}

	// Visibility first: what the viewer may see at all.
	memberStatuses := []string{MemberAccepted}
	switch f.MemberStatus {
	case "all":
		memberStatuses = []string{MemberPending, MemberAccepted, MemberRejected}
	case MemberPending, MemberRejected:
		memberStatuses = []string{f.MemberStatus}
	}
	isMember := "EXISTS (SELECT 1 FROM image_members m WHERE m.image_id = images.id AND m.member = ? AND m.status IN (" +
		placeholders(len(memberStatuses)) + "))"
	memberArgs := append([]any{v.project}, anys(memberStatuses)...)
	switch {
	case v.admin:
		if f.Visibility != "" && f.Visibility != "all" {
			add("visibility = ?", f.Visibility)
		}
	case f.Visibility == VisibilityPublic || f.Visibility == VisibilityCommunity:
		add("visibility = ?", f.Visibility)
	case f.Visibility == VisibilityPrivate:
		add("visibility = ? AND owner = ?", VisibilityPrivate, v.project)
	case f.Visibility == VisibilityShared:
		add("visibility = ? AND (owner = ? OR "+isMember+")", append([]any{VisibilityShared, v.project}, memberArgs...)...)
	default: // "" or "all"
		clause := "(owner = ? OR visibility = ? OR (visibility = ? AND " + isMember + ")"
		a := append([]any{v.project, VisibilityPublic, VisibilityShared}, memberArgs...)
		if f.Visibility == "all" {
			clause += " OR visibility = ?"
			a = append(a, VisibilityCommunity)
		}
		add(clause+")", a...)
	}

	in("id", f.IDs)
	in("name", f.Names)
	in("status", f.Statuses)
	in("disk_format", f.DiskFormats)
	in("container_format", f.ContainerFormats)
	if f.Owner != "" {
		add("owner = ?", f.Owner)
	}
	for _, t := range f.Tags {
		add("EXISTS (SELECT 1 FROM image_tags t WHERE t.image_id = images.id AND t.tag = ?)", t)
	}
	for k, val := range f.Properties {
		add("EXISTS (SELECT 1 FROM image_properties p WHERE p.image_id = images.id AND p.name = ? AND p.value = ?)", k, val)
	}
	if f.Protected != nil {
		add("protected = ?", db.Bool(*f.Protected))
	}
	add("os_hidden = ?", db.Bool(f.Hidden))
	if f.SizeMin != nil {
		add("size >= ?", *f.SizeMin)
	}
	if f.SizeMax != nil {
		add("size <= ?", *f.SizeMax)
	}
	for _, tf := range f.CreatedAt {
		add("created_at "+timeOps[tf.Op]+" ?", fmtTime(tf.T))
	}
	for _, tf := range f.UpdatedAt {
		add("updated_at "+timeOps[tf.Op]+" ?", fmtTime(tf.T))
	}

	// Ordering: the requested keys, then the ID, in the last key's direction.
	keys := append([]string(nil), f.SortKeys...)
	dirs := append([]string(nil), f.SortDirs...)
	if !slices.Contains(keys, "id") {
		keys = append(keys, "id")
		dirs = append(dirs, dirs[len(dirs)-1])
	}
	if marker != nil {
		// Keyset: rows strictly after the marker in this order.
		var ors []string
		for i := range keys {
			var ands []string
			for j := 0; j < i; j++ {
				ands = append(ands, sortColumns[keys[j]]+" = ?")
				args = append(args, sortValue(marker, keys[j]))
			}
			op := ">"
			if dirs[i] == "desc" {
				op = "<"
			}
			ands = append(ands, sortColumns[keys[i]]+" "+op+" ?")
			args = append(args, sortValue(marker, keys[i]))
			ors = append(ors, "("+strings.Join(ands, " AND ")+")")
		}
		where = append(where, "("+strings.Join(ors, " OR ")+")")
	}
	order := make([]string, len(keys))
	for i := range keys {
		order[i] = sortColumns[keys[i]] + " " + strings.ToUpper(dirs[i])
	}
	q := `SELECT ` + imageCols + ` FROM images WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY ` + strings.Join(order, ", ") + ` LIMIT ?`
	args = append(args, f.Limit+1)

	rows, err := st.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, false, err
	}
	var out []Image
	for rows.Next() {
		img, err := scanImage(rows)
		if err != nil {
			rows.Close()
			return nil, false, err
		}
		out = append(out, img)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	more := len(out) > f.Limit
	if more {
		out = out[:f.Limit]
	}
	if err := loadDetails(ctx, st.db, out); err != nil {
		return nil, false, err
	}
	return out, more, nil
}
