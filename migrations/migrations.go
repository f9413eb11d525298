// Package migrations holds Nimbus's SQL schema as numbered files, embedded in
// the binary and applied in order at start. A released file is never edited;
// changes come as a new, higher-numbered file.
package migrations

import "embed"

// FS holds every NNNN_name.sql migration.
//
//go:embed *.sql
var FS embed.FS
