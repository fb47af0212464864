#!/usr/bin/env node
// The production build of the web client, written to a separate folder (the source is only read):
//
//   node scripts/build-web.mjs [OUT] [--source DIR]     (defaults: the repository's dist/ from its public/)
//
// No bundler and no dependency (node >= 20). `npm run build` runs it after `npm run vendor`; Vercel serves
// the result (vercel.json: "outputDirectory": "dist"), while `make dev` and the tests serve public/ unbuilt.
// It copies SOURCE without dev/ (developer pages, never deployed) and gives each cached folder its own
// version, so vercel.json can serve /static/ `immutable` while the `no-cache` pages name the current one:
// - vendor/ -> static/<V>/vendor/: only the files a copied file names ("/vendor/hls.min.js"; dash.js,
//   which only dev/ loads, stays out). V hashes those files, so it changes with the lockfile only and a
//   tab opened before a deploy still finds the player library it loads lazily.
// - assets/ -> static/<A>/assets/: A hashes the asset files and V (they embed the vendor URLs).
// - every "/assets/" and "/vendor/" in the copied text files outside vendor/ (comments included) becomes
//   "/static/<A>/assets/" or "/static/<V>/vendor/". Relative references ("./app.js") keep working inside
//   a folder. The vendored libraries are third-party files, copied byte for byte.
// It fails (exit 1, OUT as it was) when a copied file
// - outside vendor/ names "/assets" or "/vendor" without a "/" after it (a path built by concatenation,
//   which the rewriting would miss),
// - in assets/ or vendor/ climbs out of that folder with "../" (the two folders no longer sit side by side),
// - outside vendor/ names a "/assets/..." or "/vendor/..." file or folder that does not exist.

import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const REPO = fileURLToPath(new URL("..", import.meta.url));
const STATIC = "static";
// Part of both hashes: a change to how this script rewrites files must never reuse an immutable URL.
const FORMAT = "cinema-online build-web 2";
const TEXT = /\.(?:html?|m?js|css|json|webmanifest|svg|xml|txt)$/;
// An absolute /assets/ or /vendor/ path (not inside a longer one: "/media/assets/", "./vendor/").
const ABSOLUTE = /(?<![\w.~%/-])\/(assets|vendor)\//g;
// The same with the path after it ("${" starts a template substitution: only the folder before it is known).
const REFERENCE = /(?<![\w.~%/-])\/(assets|vendor)\/([\w.~%@+/-]*)(\$\{)?/g;
// "/assets" or "/vendor" not followed by "/" (but "/assets.json" or "/vendored" are other names).
const BARE = /(?<![\w.~%/-])\/(assets|vendor)(?![\w/-]|\.\w)/g;
// A run of "./" and "../" starting a relative path.
const RELATIVE = /(?<![\w.~%/-])(?:\.\.?\/)+/g;

class BuildError extends Error {}

/** Every file under `root`, as sorted POSIX paths relative to it. */
function filesUnder(root) {
  const found = [];
  const walk = (folder) => {
    for (const entry of fs.readdirSync(folder, { withFileTypes: true })) {
      const full = path.join(folder, entry.name);
      if (entry.isDirectory()) walk(full);
      else found.push(path.relative(root, full).split(path.sep).join("/"));
    }
  };
  walk(root);
  return found.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** 12 hex digits of SHA-256 over `parts`, then each file's path, size and content (lengths first, so no
 * two trees hash alike by shifting bytes). */
function hashOf(parts, source, files) {
  const hash = createHash("sha256").update(`${parts.join("\0")}\0`);
  for (const file of files) {
    const content = fs.readFileSync(path.join(source, file));
    hash.update(`${Buffer.byteLength(file)}:${file}\0${content.length}\0`).update(content);
  }
  return hash.digest("hex").slice(0, 12);
}

const lineOf = (text, index) => text.slice(0, index).split("\n").length;

/** Whether `inner` is `outer` or a path below it. */
function within(inner, outer) {
  const relative = path.relative(outer, inner);
  return relative === "" || (!relative.startsWith("..") && !path.isAbsolute(relative));
}

/** Build `source` into `out` (replaced only on success); the two versions and what was copied. */
function build(source, out) {
  if (!fs.statSync(source, { throwIfNoEntry: false })?.isDirectory()) {
    throw new BuildError(`${source}: no such folder`);
  }
  if (within(out, source) || within(source, out)) {
    throw new BuildError(`${out}: the output must lie outside ${source} (and not contain it)`);
  }
  const previous = fs.statSync(out, { throwIfNoEntry: false });
  const replaceable =
    previous?.isDirectory() && (fs.existsSync(path.join(out, STATIC)) || !fs.readdirSync(out).length);
  if (previous && !replaceable) {
    throw new BuildError(`${out} exists and is not a build (no ${STATIC}/): remove it or choose another`);
  }

  const files = filesUnder(source).filter((file) => !file.startsWith("dev/"));
  const texts = new Map(); // text files outside vendor/: relative path -> content
  const named = new Set(); // vendor files some text names
  const problems = [];
  for (const file of files) {
    if (file.startsWith("vendor/") || !TEXT.test(file)) continue;
    const text = fs.readFileSync(path.join(source, file), "utf8");
    texts.set(file, text);
    for (const match of text.matchAll(BARE)) {
      const where = `${file}:${lineOf(text, match.index)}`;
      problems.push(`${where}: ${match[0]} without a "/" after it (not rewritten)`);
    }
    for (const match of text.matchAll(REFERENCE)) {
      const [, folder, rest, substitution] = match;
      const known = substitution ? rest.slice(0, rest.lastIndexOf("/") + 1) : rest;
      const target = path.posix.normalize(`${folder}/${known}`); // "assets/../x" is not in assets/
      const inside = target.startsWith(`${folder}/`);
      const stat = inside && fs.statSync(path.join(source, target), { throwIfNoEntry: false });
      if (!stat || (target.endsWith("/") ? !stat.isDirectory() : !stat.isFile())) {
        const hint = folder === "vendor" ? " (`npm run vendor` copies the players there)" : "";
        const where = `${file}:${lineOf(text, match.index)}`;
        problems.push(`${where}: /${folder}/${known} names no file or folder of ${folder}/${hint}`);
      } else if (folder === "vendor" && stat.isFile()) named.add(target);
    }
  }
  const vendor = files.filter((file) => named.has(file));
  const assets = files.filter((file) => file.startsWith("assets/"));
  for (const file of [...assets, ...vendor]) {
    if (!TEXT.test(file)) continue;
    const text = texts.get(file) ?? fs.readFileSync(path.join(source, file), "utf8");
    const depth = file.split("/").length - 2; // folders between assets/ (or vendor/) and the file
    for (const match of text.matchAll(RELATIVE)) {
      if (match[0].split("../").length - 1 > depth) {
        const where = `${file}:${lineOf(text, match.index)}`;
        problems.push(`${where}: ${match[0]} climbs out of ${file.split("/")[0]}/`);
      }
    }
  }
  if (problems.length) throw new BuildError(`the build would break references:\n  ${problems.join("\n  ")}`);

  const vendorHash = hashOf([FORMAT, "vendor"], source, vendor);
  const assetsHash = hashOf([FORMAT, "assets", vendorHash], source, assets);
  const prefix = new Map([["assets", `${STATIC}/${assetsHash}/`], ["vendor", `${STATIC}/${vendorHash}/`]]);
  const staging = path.join(path.dirname(out), `.${path.basename(out)}.building-${process.pid}`);
  fs.rmSync(staging, { recursive: true, force: true });
  let rewritten = 0;
  try {
    for (const file of files) {
      const top = file.split("/")[0];
      if (top === "vendor" && !named.has(file)) continue;
      const target = path.join(staging, (prefix.get(top) ?? "") + file);
      fs.mkdirSync(path.dirname(target), { recursive: true });
      const text = texts.get(file);
      if (text === undefined) {
        fs.copyFileSync(path.join(source, file), target);
        continue;
      }
      const built = text.replace(ABSOLUTE, (_, name) => `/${prefix.get(name)}${name}/`);
      if (built !== text) rewritten += 1;
      fs.writeFileSync(target, built);
    }
    fs.rmSync(out, { recursive: true, force: true });
    fs.renameSync(staging, out);
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
  const dropped = files.filter((file) => file.startsWith("vendor/") && !named.has(file));
  return { assetsHash, vendorHash, rewritten, dropped };
}

function main(argv) {
  const args = argv.slice(2);
  if (args.includes("-h") || args.includes("--help")) {
    process.stdout.write("usage: node scripts/build-web.mjs [OUT] [--source DIR]  (dist/ from public/)\n");
    return 0;
  }
  const at = args.indexOf("--source");
  const sourceArg = at === -1 ? undefined : args[at + 1];
  const rest = at === -1 ? args : args.filter((_, index) => index !== at && index !== at + 1);
  if ((at !== -1 && sourceArg === undefined) || rest.length > 1 || rest.some((arg) => arg.startsWith("-"))) {
    process.stderr.write("usage: node scripts/build-web.mjs [OUT] [--source DIR]\n");
    return 2;
  }
  const source = path.resolve(sourceArg ?? path.join(REPO, "public"));
  const out = path.resolve(rest[0] ?? path.join(REPO, "dist"));
  try {
    const { assetsHash, vendorHash, rewritten, dropped } = build(source, out);
    const shown = (folder) => path.relative(process.cwd(), folder) || ".";
    process.stdout.write(
      `build-web: ${shown(source)} -> ${shown(out)}: ${STATIC}/${assetsHash}/assets/, ` +
        `${STATIC}/${vendorHash}/vendor/; ${rewritten} files rewritten; left out: dev/` +
        `${dropped.map((file) => `, ${file}`).join("")}\n`,
    );
    return 0;
  } catch (error) {
    if (!(error instanceof BuildError)) throw error;
    process.stderr.write(`build-web: ${error.message}\n`);
    return 1;
  }
}

process.exitCode = main(process.argv);
