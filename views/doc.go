// Package views holds the dashboard's templ components and the view models
// they take: the layout, the login page, the project, admin and identity
// pages, and the partials HTMX swaps in. Handlers in web build the models;
// templates never see service rows or database types.
package views
