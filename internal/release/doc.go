// Package release holds checks of the release configuration.
package release
