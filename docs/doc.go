// Package docs holds no code: its tests keep README.md and the pages in this folder true. Every page is linked
// once from the README, no paragraph of the README is repeated in a page, every relative link resolves, and
// temporal.md names every workflow type, signal, update, query and search attribute the code registers.
package docs
