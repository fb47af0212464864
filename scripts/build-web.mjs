#!/usr/bin/env node
// The production build of the web client: makes public/assets/ and public/vendor/ cacheable for a year.
//
//   node scripts/build-web.mjs [DIR]      (DIR defaults to public/; `npm run build` runs it after `vendor`)
//
// No bundler and no dependency (node >= 20). The tree is rewritten IN PLACE, as Vercel's buildCommand does
// on its fresh checkout (locally, build a copy: tests/support/web_build.py):
// - assets/ and vendor/ move into one versioned folder, static/<hash>/assets/ and static/<hash>/vendor/,
//   where <hash> is the first 12 hex digits of a SHA-256 over every file's path and content in those two
//   folders (sorted) and this build's format version. A changed file is a new URL, so vercel.json can
//   serve /static/ `immutable`; the pages stay `no-cache` and name the current folder.
// - every absolute "/assets/..." and "/vendor/..." reference becomes "/static/<hash>/assets/..." (and
//   vendor): in HTML files the attribute values (href, src, modulepreload links...), in .js/.mjs/.css files
//   outside vendor/ the whole text (import specifiers, script URLs, CSS url()). Relative imports
//   ("./app.js") keep working inside the folder. The vendored libraries are third-party files: untouched.
// - it fails (exit 1, the tree untouched) when, after rewriting, an HTML file or a script or style sheet
//   still refers to /assets/ or /vendor/ outside comments, or a rewritten reference names a file (or
//   folder) that does not exist; and it refuses a tree it already built (static/ exists).

import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";

const MOVED = ["assets", "vendor"];
const STATIC = "static";
// Part of the hash: a change to how this script rewrites files must never reuse an immutable URL.
const FORMAT = "cinema-online build-web 1";
// An absolute /assets/ or /vendor/ path (not inside a longer one: "/media/assets/", "./vendor/").
const ABSOLUTE = /(?<![\w.~%/-])\/(assets|vendor)\//g;
const SCRIPT_OR_STYLE = /\.(?:m?js|css)$/;
const HTML = /\.html?$/;

class BuildError extends Error {}

/** Every regular file under `dir`, as sorted POSIX paths relative to `base`. */
function filesUnder(base, dir) {
  const found = [];
  const walk = (folder) => {
    for (const entry of fs.readdirSync(folder, { withFileTypes: true })) {
      const full = path.join(folder, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) found.push(path.relative(base, full).split(path.sep).join("/"));
      else throw new BuildError(`${full}: not a plain file or folder (a link?): the build moves plain files`);
    }
  };
  walk(dir);
  return found.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The version of the moved folders: 12 hex digits of SHA-256 over this format, then each file's path,
 * size and content in path order (lengths first, so no two trees hash alike by shifting bytes). */
export function treeHash(root) {
  const hash = createHash("sha256").update(`${FORMAT}\0`);
  for (const name of MOVED) {
    for (const file of filesUnder(root, path.join(root, name))) {
      const content = fs.readFileSync(path.join(root, file));
      hash.update(`${Buffer.byteLength(file)}:${file}\0${content.length}\0`).update(content);
    }
  }
  return hash.digest("hex").slice(0, 12);
}

// --- what is code and what is a comment ----------------------------------------------------------------

const REGEX_AFTER_WORD = new Set([
  "return", "typeof", "instanceof", "in", "of", "new", "delete", "void", "throw", "case", "do", "else",
  "yield", "await",
]);

/** [start, end) ranges of the comments of a JavaScript source: a small lexer that knows strings, template
 * literals (with nested ${...}) and regular expression literals, so "https://" or /\/*\/ is not a comment. */
export function jsComments(source) {
  const comments = [];
  const templates = []; // open ${ ... } substitutions: the brace depth inside each
  let prev = ""; // the last significant token (a punctuator or a word), to tell a regex from a division
  let i = 0;
  const n = source.length;
  const skipString = (quote) => {
    for (i += 1; i < n && source[i] !== quote; i += 1) {
      if (source[i] === "\\") i += 1;
      else if (source[i] === "\n") break; // unterminated: stop at the line's end as the parser would
    }
    i += 1;
  };
  const skipTemplate = () => {
    // from inside a template literal (just after ` or a substitution's }) to its end or next ${
    for (; i < n; i += 1) {
      if (source[i] === "\\") i += 1;
      else if (source[i] === "`") {
        i += 1;
        return;
      } else if (source[i] === "$" && source[i + 1] === "{") {
        templates.push(0);
        i += 2;
        return;
      }
    }
  };
  while (i < n) {
    const char = source[i];
    const next = source[i + 1];
    if (char === "/" && next === "/") {
      const end = source.indexOf("\n", i);
      const stop = end === -1 ? n : end;
      comments.push([i, stop]);
      i = stop;
    } else if (char === "/" && next === "*") {
      const end = source.indexOf("*/", i + 2);
      const stop = end === -1 ? n : end + 2;
      comments.push([i, stop]);
      i = stop;
    } else if (char === "'" || char === '"') {
      skipString(char);
      prev = "string";
    } else if (char === "`") {
      i += 1;
      skipTemplate();
      prev = "string";
    } else if (char === "/") {
      const regexAllowed =
        prev === "" || REGEX_AFTER_WORD.has(prev) || /^[(,=:[!&|?{};+\-*%<>~^]$/.test(prev);
      if (regexAllowed) {
        let inClass = false;
        for (i += 1; i < n; i += 1) {
          const c = source[i];
          if (c === "\\") i += 1;
          else if (c === "[") inClass = true;
          else if (c === "]") inClass = false;
          else if (c === "/" && !inClass) break;
          else if (c === "\n") break;
        }
        i += 1;
        while (i < n && /[a-z]/i.test(source[i])) i += 1; // flags
        prev = "regex";
      } else {
        i += 1;
        prev = "/";
      }
    } else if (/[\w$]/.test(char)) {
      let end = i + 1;
      while (end < n && /[\w$]/.test(source[end])) end += 1;
      prev = source.slice(i, end);
      i = end;
    } else if (/\s/.test(char)) {
      i += 1;
    } else {
      if (templates.length && char === "{") templates[templates.length - 1] += 1;
      else if (templates.length && char === "}") {
        if (templates[templates.length - 1] === 0) {
          templates.pop();
          i += 1;
          skipTemplate(); // back inside the enclosing template literal
          prev = "string";
          continue;
        }
        templates[templates.length - 1] -= 1;
      }
      prev = char;
      i += 1;
    }
  }
  return comments;
}

/** [start, end) ranges of the comments of a CSS source (strings skipped). */
function cssComments(source) {
  const comments = [];
  for (let i = 0; i < source.length; ) {
    const char = source[i];
    if (char === "/" && source[i + 1] === "*") {
      const end = source.indexOf("*/", i + 2);
      const stop = end === -1 ? source.length : end + 2;
      comments.push([i, stop]);
      i = stop;
    } else if (char === '"' || char === "'") {
      for (i += 1; i < source.length && source[i] !== char && source[i] !== "\n"; i += 1) {
        if (source[i] === "\\") i += 1;
      }
      i += 1;
    } else i += 1;
  }
  return comments;
}

/** [start, end) ranges of the comments of an HTML source. */
function htmlComments(source) {
  const comments = [];
  for (let i = source.indexOf("<!--"); i !== -1; i = source.indexOf("<!--", i)) {
    const end = source.indexOf("-->", i + 4);
    const stop = end === -1 ? source.length : end + 3;
    comments.push([i, stop]);
    i = stop;
  }
  return comments;
}

/** `source` with its comments blanked (newlines kept, so indexes and line numbers stay). */
export function withoutComments(source, comments) {
  let out = "";
  let at = 0;
  for (const [start, end] of comments) {
    out += source.slice(at, start) + source.slice(start, end).replace(/[^\n]/g, " ");
    at = end;
  }
  return out + source.slice(at);
}

// --- rewriting ------------------------------------------------------------------------------------------

/** The attribute values of every tag outside comments, with absolute /assets/ and /vendor/ rewritten. */
function rewriteHtml(source, prefix) {
  const comments = htmlComments(source);
  const code = withoutComments(source, comments);
  const tag = /<[A-Za-z][^\s/>]*(?:\s+[^\s"'>/=]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'=<>`]+))?)*\s*\/?>/g;
  const attribute = /(\s[^\s"'>/=]+\s*=\s*)("[^"]*"|'[^']*'|[^\s"'=<>`]+)/g;
  let out = "";
  let at = 0;
  for (const match of code.matchAll(tag)) {
    const original = source.slice(match.index, match.index + match[0].length);
    const rewritten = original.replace(
      attribute,
      (_, name, value) => name + value.replace(ABSOLUTE, `${prefix}$1/`),
    );
    out += source.slice(at, match.index) + rewritten;
    at = match.index + match[0].length;
  }
  return out + source.slice(at);
}

/** The references of `code` (comments blanked) to the built folder: [index, relative path, dynamic]. */
function referencesIn(code, prefix) {
  const escaped = prefix.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  const reference = new RegExp(`${escaped}((?:assets|vendor)/[^\\s"'\`()<>?#,;\\\\{}$]*)(\\$\\{)?`, "g");
  return [...code.matchAll(reference)].map((match) => [match.index, match[1], Boolean(match[2])]);
}

function lineOf(source, index) {
  return source.slice(0, index).split("\n").length;
}

/** What is wrong with one rewritten file: leftover absolute references, references to missing files. */
function problemsOf(file, rewritten, comments, prefix, root) {
  const code = withoutComments(rewritten, comments);
  const problems = [];
  for (const match of code.matchAll(ABSOLUTE)) {
    problems.push(`${file}:${lineOf(code, match.index)}: still refers to ${match[0]}... (not rewritten)`);
  }
  for (const [index, relative, dynamic] of referencesIn(code, prefix)) {
    // A template's ${...} makes the rest dynamic: only its folder can be checked.
    const target = dynamic ? relative.slice(0, relative.lastIndexOf("/") + 1) : relative;
    const full = path.join(root, ...target.split("/").filter(Boolean));
    const wantsFolder = target.endsWith("/");
    const stat = fs.statSync(full, { throwIfNoEntry: false });
    if (!stat || (wantsFolder ? !stat.isDirectory() : !stat.isFile())) {
      const what = wantsFolder ? "folder" : "file";
      problems.push(`${file}:${lineOf(code, index)}: ${prefix}${relative} names no ${what}`);
    }
  }
  return problems;
}

/** Build `root` in place; the hash. Throws BuildError (nothing written) when the tree cannot be built. */
export function build(root) {
  if (!fs.statSync(root, { throwIfNoEntry: false })?.isDirectory()) {
    throw new BuildError(`${root}: no such folder`);
  }
  if (fs.existsSync(path.join(root, STATIC))) {
    throw new BuildError(`${root} is built already (${STATIC}/ exists): build a fresh copy of the sources`);
  }
  for (const name of MOVED) {
    const folder = path.join(root, name);
    if (!fs.statSync(folder, { throwIfNoEntry: false })?.isDirectory()) {
      const hint = name === "vendor" ? " (`npm run vendor` copies hls.js and dash.js there)" : "";
      throw new BuildError(`${root} has no ${name}/ folder${hint}`);
    }
  }
  const hash = treeHash(root);
  const prefix = `/${STATIC}/${hash}/`;
  const changes = new Map(); // relative path -> new content
  const problems = [];
  for (const file of filesUnder(root, root)) {
    if (file.startsWith("vendor/")) continue; // third-party code: served as npm shipped it
    const isHtml = HTML.test(file);
    if (!isHtml && !SCRIPT_OR_STYLE.test(file)) continue;
    const source = fs.readFileSync(path.join(root, file), "utf8");
    const rewritten = isHtml ? rewriteHtml(source, prefix) : source.replace(ABSOLUTE, `${prefix}$1/`);
    const lexer = isHtml ? htmlComments : file.endsWith(".css") ? cssComments : jsComments;
    const comments = lexer(rewritten);
    problems.push(...problemsOf(file, rewritten, comments, prefix, root));
    if (rewritten !== source) changes.set(file, rewritten);
  }
  if (problems.length) {
    throw new BuildError(`the build would leave broken references:\n  ${problems.join("\n  ")}`);
  }
  for (const [file, content] of changes) fs.writeFileSync(path.join(root, file), content);
  const target = path.join(root, STATIC, hash);
  fs.mkdirSync(target, { recursive: true });
  for (const name of MOVED) fs.renameSync(path.join(root, name), path.join(target, name));
  return { hash, rewritten: [...changes.keys()] };
}

function main(argv) {
  const args = argv.slice(2);
  if (args.includes("-h") || args.includes("--help")) {
    process.stdout.write("usage: node scripts/build-web.mjs [DIR]  (default: public; rewritten in place)\n");
    return 0;
  }
  if (args.length > 1) {
    process.stderr.write("build-web: one folder at most (default: public)\n");
    return 2;
  }
  const root = path.resolve(args[0] ?? "public");
  try {
    const { hash, rewritten } = build(root);
    process.stdout.write(
      `build-web: ${path.relative(process.cwd(), root) || "."}/{assets,vendor} -> ${STATIC}/${hash}/; ` +
        `${rewritten.length} files rewritten\n`,
    );
    return 0;
  } catch (error) {
    if (!(error instanceof BuildError)) throw error;
    process.stderr.write(`build-web: ${error.message}\n`);
    return 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  process.exitCode = main(process.argv);
}
