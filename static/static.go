// Package static embeds the dashboard's browser assets: the stylesheet, the
// small script that wires htmx to the page (CSRF header, dialog, toasts),
// icons, and the front-end packages that `make assets` vendors into vendor/.
package static

import "embed"

// FS holds css/, js/, img/ and vendor/, served under /static/.
//
//go:embed css js img vendor
var FS embed.FS
