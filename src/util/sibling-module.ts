// Worker entry points are named by URL, which the compiler does not rewrite
// as it does import specifiers: a module's sibling takes the extension of the
// module itself, .ts in a checkout and .js once compiled to dist/.

/** The URL of module `name` (no extension) in the directory of `from` (an import.meta.url). */
export function siblingModule(from: string, name: string): URL {
  return new URL(`./${name}${from.slice(from.lastIndexOf('.'))}`, from);
}
