import { z } from 'zod';
import { SitecastError } from '../errors.js';
import { guard } from './guard.js';
import type { SiteDb } from './open.js';
import type { PackageTable, ProgramTable } from './schema.js';
import {
  absolutePathSchema,
  commandLineSchema,
  isOneLine,
  nameSchema,
  packageFilePathSchema,
  packageIdSchema,
  parseInput,
  prioritySchema,
  sha256Schema,
  shortNameSchema,
  type Priority,
} from './values.js';

export interface Program {
  name: string;
  commandLine: string;
  maxRunTimeSeconds: number;
}

export interface Package {
  id: string;
  name: string;
  version: string;
  sourcePath: string;
  priority: Priority;
  sourceVersion: number;
  manifestSha256: string | null;
  /** Why the source folder of the current source version could not be used, or null. */
  sourceProblem: string | null;
  /** An `.ICO` file inside the source folder (its path in the manifest), or null for the default icon. */
  icon: string | null;
  createdAt: string;
  updatedAt: string;
  programs: Program[];
}

/** One week: a program that runs longer is stopped and reported failed. */
const MAX_RUN_TIME_LIMIT = 7 * 24 * 3600;
export const DEFAULT_MAX_RUN_TIME_SECONDS = 3600;

const programSchema = z.object({
  name: shortNameSchema,
  commandLine: commandLineSchema,
  maxRunTimeSeconds: z.number().int().min(1).max(MAX_RUN_TIME_LIMIT).default(DEFAULT_MAX_RUN_TIME_SECONDS),
});
const programsSchema = z
  .array(programSchema)
  .max(64)
  .refine((list) => new Set(list.map((p) => p.name)).size === list.length, 'program names must be unique');
const versionSchema = z.string().trim().max(64).refine(isOneLine, 'must be one line');

const newPackageSchema = z.object({
  name: nameSchema,
  version: versionSchema.default(''),
  sourcePath: absolutePathSchema,
  priority: prioritySchema.default('medium'),
  programs: programsSchema.default([]),
  icon: packageFilePathSchema.nullable().default(null),
});
export type NewPackage = z.input<typeof newPackageSchema>;

const packageUpdateSchema = z.object({
  name: nameSchema.optional(),
  version: versionSchema.optional(),
  sourcePath: absolutePathSchema.optional(),
  priority: prioritySchema.optional(),
  programs: programsSchema.optional(),
  /** Forces a new source version (the administrator's "update distribution points"). */
  refreshSource: z.boolean().default(false),
});
export type PackageUpdate = z.input<typeof packageUpdateSchema>;

const PACKAGE_ID_MAX = 0xfffff;

function toPackage(row: PackageTable, programs: ProgramTable[]): Package {
  return {
    id: row.id,
    name: row.name,
    version: row.version,
    sourcePath: row.source_path,
    priority: prioritySchema.parse(row.priority),
    sourceVersion: Number(row.source_version),
    manifestSha256: row.manifest_sha256,
    sourceProblem: row.source_problem !== null && Number(row.source_problem_version) === Number(row.source_version) ? row.source_problem : null,
    icon: row.icon ?? null,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    programs: [...programs]
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((p) => ({
      name: p.name,
      commandLine: p.command_line,
      maxRunTimeSeconds: Number(p.max_run_time_seconds),
    })),
  };
}

function programRows(packageId: string, programs: z.output<typeof programsSchema>): ProgramTable[] {
  return programs.map((p) => ({
    package_id: packageId,
    name: p.name,
    command_line: p.commandLine,
    max_run_time_seconds: p.maxRunTimeSeconds,
  }));
}

/**
 * Creates a package of the local site with its programs, in one transaction.
 * The id is the site code and the next value of a counter in hex, so ids are
 * never reused even after a package is deleted.
 */
export async function createPackage(site: SiteDb, input: NewPackage): Promise<Package> {
  const v = parseInput(newPackageSchema, input, 'package');
  return guard(site, `package ${JSON.stringify(v.name)}`, () =>
    site.db.transaction().execute(async (trx) => {
      const local = await trx.selectFrom('site').select('code').where('is_local', '=', 1).executeTakeFirst();
      if (local === undefined) {
        throw new SitecastError('SITECAST_E_NOT_FOUND', 'the site database has no local site', {
          hint: 'create the site with `sitecast site init`',
        });
      }
      const counter = await trx
        .updateTable('counters')
        .set((eb) => ({ value: eb('value', '+', 1) }))
        .where('name', '=', 'package_id')
        .returning('value')
        .executeTakeFirstOrThrow();
      const n = Number(counter.value);
      if (n > PACKAGE_ID_MAX) {
        throw new SitecastError('SITECAST_E_ID_EXHAUSTED', `site ${local.code} has used all ${PACKAGE_ID_MAX + 1} package ids`);
      }
      const id = `${local.code}${n.toString(16).toUpperCase().padStart(5, '0')}`;
      const now = new Date().toISOString();
      const row: PackageTable = {
        id,
        name: v.name,
        version: v.version,
        source_path: v.sourcePath,
        priority: v.priority,
        source_version: 1,
        manifest_sha256: null,
        source_problem: null,
        source_problem_version: null,
        icon: v.icon,
        created_at: now,
        updated_at: now,
      };
      await trx.insertInto('packages').values(row).execute();
      const programs = programRows(id, v.programs);
      if (programs.length > 0) await trx.insertInto('programs').values(programs).execute();
      return toPackage(row, programs);
    }),
  );
}

/**
 * Changes a package. A new source path or version text, or refreshSource,
 * starts a new source version: every DP must fetch it again. Given programs
 * replace the old list.
 */
export async function updatePackage(site: SiteDb, id: string, patch: PackageUpdate): Promise<Package> {
  const pkgId = parseInput(packageIdSchema, id, 'package id');
  const v = parseInput(packageUpdateSchema, patch, `package ${pkgId}`);
  return guard(site, `package ${pkgId}`, () =>
    site.db.transaction().execute(async (trx) => {
      const old = await trx.selectFrom('packages').selectAll().where('id', '=', pkgId).executeTakeFirst();
      if (old === undefined) throw new SitecastError('SITECAST_E_NOT_FOUND', `package ${pkgId} does not exist`);
      const changes: Partial<PackageTable> = {};
      if (v.name !== undefined && v.name !== old.name) changes.name = v.name;
      if (v.version !== undefined && v.version !== old.version) changes.version = v.version;
      if (v.sourcePath !== undefined && v.sourcePath !== old.source_path) changes.source_path = v.sourcePath;
      if (v.priority !== undefined && v.priority !== old.priority) changes.priority = v.priority;
      const newSource = changes.version !== undefined || changes.source_path !== undefined || v.refreshSource;
      if (newSource) changes.source_version = Number(old.source_version) + 1;
      const touched = Object.keys(changes).length > 0 || v.programs !== undefined;
      if (touched) {
        changes.updated_at = new Date().toISOString();
        await trx.updateTable('packages').set(changes).where('id', '=', pkgId).execute();
      }
      if (v.programs !== undefined) {
        await trx.deleteFrom('programs').where('package_id', '=', pkgId).execute();
        const rows = programRows(pkgId, v.programs);
        if (rows.length > 0) await trx.insertInto('programs').values(rows).execute();
      }
      const row = { ...old, ...changes };
      const programs = await trx.selectFrom('programs').selectAll().where('package_id', '=', pkgId).orderBy('name').execute();
      return toPackage(row, programs);
    }),
  );
}

/**
 * Records the manifest Distribution Manager built for the current source
 * version. Not a definition change: the change-log triggers ignore it.
 */
export async function setPackageManifest(site: SiteDb, id: string, sha256: string | null): Promise<void> {
  const pkgId = parseInput(packageIdSchema, id, 'package id');
  const hash = parseInput(sha256Schema.nullable(), sha256, `manifest of ${pkgId}`);
  const result = await guard(site, `package ${pkgId}`, () =>
    site.db
      .updateTable('packages')
      .set({ manifest_sha256: hash, source_problem: null, source_problem_version: null, updated_at: new Date().toISOString() })
      .where('id', '=', pkgId)
      .executeTakeFirst(),
  );
  if (Number(result.numUpdatedRows) === 0) throw new SitecastError('SITECAST_E_NOT_FOUND', `package ${pkgId} does not exist`);
}

/**
 * Records that the source folder of `sourceVersion` could not be used (the
 * package is failed for that version). Cleared when a version is ingested.
 */
export async function setSourceProblem(site: SiteDb, id: string, sourceVersion: number, problem: string): Promise<void> {
  const pkgId = parseInput(packageIdSchema, id, 'package id');
  await guard(site, `package ${pkgId}`, () =>
    site.db
      .updateTable('packages')
      .set({ source_problem: problem.slice(0, 8000), source_problem_version: sourceVersion, updated_at: new Date().toISOString() })
      .where('id', '=', pkgId)
      .executeTakeFirst(),
  );
}

export async function getPackage(site: SiteDb, id: string): Promise<Package | undefined> {
  const pkgId = parseInput(packageIdSchema, id, 'package id');
  return guard(site, `package ${pkgId}`, async () => {
    const row = await site.db.selectFrom('packages').selectAll().where('id', '=', pkgId).executeTakeFirst();
    if (row === undefined) return undefined;
    const programs = await site.db.selectFrom('programs').selectAll().where('package_id', '=', pkgId).orderBy('name').execute();
    return toPackage(row, programs);
  });
}

export async function listPackages(site: SiteDb): Promise<Package[]> {
  return guard(site, 'packages', async () => {
    const rows = await site.db.selectFrom('packages').selectAll().orderBy('id').execute();
    const programs = await site.db.selectFrom('programs').selectAll().orderBy('package_id').orderBy('name').execute();
    const byPackage = new Map<string, ProgramTable[]>();
    for (const p of programs) byPackage.set(p.package_id, [...(byPackage.get(p.package_id) ?? []), p]);
    return rows.map((r) => toPackage(r, byPackage.get(r.id) ?? []));
  });
}
