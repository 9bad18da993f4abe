// Package docs holds no code: its tests keep README.md and the pages in this folder true. Every page is linked
// once from the README, no paragraph is in two of them, every relative link resolves, every target of make test
// has its row in testing.md, and temporal.md names every workflow type, signal, update, query and search
// attribute the code registers.
package docs
