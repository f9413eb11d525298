package network

// Neutron-style listings: any attribute as a filter (repeated = any of),
// sort_key/sort_dir on any sortable attribute, and keyset paging after a
// marker, all in SQL so a page is cut after filtering.

import (
	"strconv"
	"strings"

	"github.com/nimbus-cloud/nimbus/backend/platform/db"
	"github.com/nimbus-cloud/nimbus/backend/platform/fault"
)

type colKind int

const (
	kText colKind = iota
	kBool
	kInt
)

// column is an attribute's SQL expression. Expressions never yield NULL
// (COALESCE where the column may), so keyset comparisons hold.
type column struct {
	expr string
	kind colKind
}

// listSpec describes how one resource is listed.
type listSpec struct {
	table string
	cols  map[string]column
	// special filters are attributes that are not one column, such as a
	// port's fixed_ips; each returns a WHERE fragment.
	special map[string]func(vals []string) (string, []any, error)
}

// parseBool accepts the spellings Neutron's convert_to_boolean does.
func parseBool(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "true", "1":
		return true, true
	case "false", "0":
		return false, true
	}
	return false, false
}

func (c column) value(key, v string) (any, error) {
	switch c.kind {
	case kBool:
		b, ok := parseBool(v)
		if !ok {
			return nil, invalidInput("'%s' is not a valid boolean value for %s", v, key)
		}
		return db.Bool(b), nil
	case kInt:
		if v == "" {
			return int64(-1), nil // matches the COALESCE of an unset value
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, invalidInput("'%s' is not an integer for %s", v, key)
		}
		return n, nil
	}
	return v, nil
}

// listIDs returns the IDs of the rows visible (the WHERE fragment vis with
// its args) that match o, in o's order, at most o.Limit of them (all when
// 0), and whether more follow.
func (x *q) listIDs(spec *listSpec, vis string, visArgs []any, o ListOptions) ([]string, bool, error) {
	where := []string{}
	args := []any{}
	if vis != "" {
		where = append(where, "("+vis+")")
		args = append(args, visArgs...)
	}
	for key, vals := range o.Filters {
		if len(vals) == 0 {
			continue
		}
		if f, ok := spec.special[key]; ok {
			frag, fargs, err := f(vals)
			if err != nil {
				return nil, false, err
			}
			where = append(where, "("+frag+")")
			args = append(args, fargs...)
			continue
		}
		c, ok := spec.cols[key]
		if !ok {
			return nil, false, fault.Invalidf("[%s] is invalid attribute for filtering", key).WithType("HTTPBadRequest")
		}
		ph := make([]string, len(vals))
		for i, v := range vals {
			val, err := c.value(key, v)
			if err != nil {
				return nil, false, err
			}
			ph[i] = "?"
			args = append(args, val)
		}
		where = append(where, c.expr+" IN ("+strings.Join(ph, ",")+")")
	}

	// Order: the requested keys, then id to make the order total.
	type key struct {
		expr string
		desc bool
	}
	if len(o.SortDirs) > 0 && len(o.SortDirs) != len(o.SortKeys) {
		return nil, false, fault.Invalidf("The number of sort_keys and sort_dirs must be same").WithType("HTTPBadRequest")
	}
	var keys []key
	hasID := false
	for i, k := range o.SortKeys {
		c, ok := spec.cols[k]
		if !ok {
			return nil, false, fault.Invalidf("%s is an invalid attribute for sort_key", k).WithType("HTTPBadRequest")
		}
		desc := false
		if len(o.SortDirs) > 0 {
			switch strings.ToLower(o.SortDirs[i]) {
			case "asc":
			case "desc":
				desc = true
			default:
				return nil, false, fault.Invalidf("%s is an invalid value for sort_dir, valid value is 'asc' and 'desc'", o.SortDirs[i]).
					WithType("HTTPBadRequest")
			}
		}
		if k == "id" {
			hasID = true
		}
		keys = append(keys, key{c.expr, desc})
	}
	if !hasID {
		keys = append(keys, key{"id", false})
	}

	if o.Marker != "" {
		exprs := make([]string, len(keys))
		for i, k := range keys {
			exprs[i] = k.expr
		}
		vals := make([]any, len(keys))
		ptrs := make([]any, len(keys))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		err := x.row("SELECT "+strings.Join(exprs, ", ")+" FROM "+spec.table+" WHERE id = ?", o.Marker).Scan(ptrs...)
		if err != nil {
			return nil, false, noRows(err, fault.NotFoundf("Marker %s could not be found.", o.Marker))
		}
		// (k1 > v1) OR (k1 = v1 AND k2 > v2) OR ...
		var ors []string
		for i := range keys {
			var ands []string
			for j := 0; j < i; j++ {
				ands = append(ands, keys[j].expr+" = ?")
				args = append(args, vals[j])
			}
			op := " > ?"
			if keys[i].desc {
				op = " < ?"
			}
			ands = append(ands, keys[i].expr+op)
			args = append(args, vals[i])
			ors = append(ors, "("+strings.Join(ands, " AND ")+")")
		}
		where = append(where, "("+strings.Join(ors, " OR ")+")")
	}

	sqlText := "SELECT id FROM " + spec.table
	if len(where) > 0 {
		sqlText += " WHERE " + strings.Join(where, " AND ")
	}
	order := make([]string, len(keys))
	for i, k := range keys {
		order[i] = k.expr
		if k.desc {
			order[i] += " DESC"
		}
	}
	sqlText += " ORDER BY " + strings.Join(order, ", ")
	if o.Limit > 0 {
		sqlText += " LIMIT ?"
		args = append(args, o.Limit+1)
	}
	ids, err := x.strings(sqlText, args...)
	if err != nil {
		return nil, false, err
	}
	if o.Limit > 0 && len(ids) > o.Limit {
		return ids[:o.Limit], true, nil
	}
	return ids, false, nil
}

// inFilter is a special filter matching id against a subquery's rows.
func inFilter(sub string) func(vals []string) (string, []any, error) {
	return func(vals []string) (string, []any, error) {
		return "id IN (" + sub + " IN (" + placeholders(len(vals)) + "))", anys(vals), nil
	}
}

// standard columns every Neutron resource has.
func standardCols(extra map[string]column) map[string]column {
	m := map[string]column{
		"id":              {"id", kText},
		"project_id":      {"project_id", kText},
		"tenant_id":       {"project_id", kText},
		"description":     {"description", kText},
		"revision_number": {"revision_number", kInt},
		"created_at":      {"created_at", kText},
		"updated_at":      {"updated_at", kText},
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}
