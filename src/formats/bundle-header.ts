import { z } from 'zod';
import { siteNodeSchema } from '../db/hierarchy.js';
import {
  commandLineSchema,
  dpStateSchema,
  isoTimeSchema,
  messageTextSchema,
  nameSchema,
  packageFilePathSchema,
  packageIdSchema,
  prioritySchema,
  severitySchema,
  sha256Schema,
  shortNameSchema,
  siteCodeSchema,
  absolutePathSchema,
  componentSchema,
} from '../db/values.js';
import { sendIdSchema } from './srq.js';

/**
 * The header of a bundle: what travels between sites besides content. It is
 * parsed with these schemas before anything in it is used, and only after
 * the bundle's signature verified. Format: docs/formats/bundle.md.
 */
export const BUNDLE_FORMAT = 1;

/** True when `s` holds a control character (C0 or DEL). */
const hasControl = (s: string): boolean => [...s].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);

const oneLine = z.string().max(64).refine((s) => !hasControl(s), 'must be one line');

export const bundleDpSchema = z.strictObject({ site: siteCodeSchema, name: shortNameSchema, path: absolutePathSchema });
export type BundleDp = z.infer<typeof bundleDpSchema>;

/** A package as its origin defines it, with the targets at and below the receiving site. */
export const packageDefinitionSchema = z.strictObject({
  id: packageIdSchema,
  name: nameSchema,
  version: oneLine,
  /** Where the origin site reads the source: for people, never read elsewhere. */
  sourcePath: absolutePathSchema,
  sourceVersion: z.number().int().min(1),
  priority: prioritySchema,
  programs: z
    .array(z.strictObject({ name: shortNameSchema, commandLine: commandLineSchema, maxRunTimeSeconds: z.number().int().min(1).max(7 * 24 * 3600) }))
    .max(64),
  manifest: sha256Schema,
  targets: z.array(z.strictObject({ site: siteCodeSchema, dp: shortNameSchema })).max(10_000),
  /** Definitions of the targeted DPs and their sites, so the receiver can name them before it has heard of them otherwise. */
  dps: z.array(bundleDpSchema).max(10_000),
  sites: z.array(siteNodeSchema).max(10_000),
  /** The package's icon, an `.ICO` file of its content; absent: the default icon. */
  icon: packageFilePathSchema.optional(),
});
export type PackageDefinition = z.infer<typeof packageDefinitionSchema>;

/** What the content part of a package bundle is. */
export const contentInfoSchema = z.strictObject({
  kind: z.enum(['full', 'delta']),
  /** For a delta: the manifest the receiver must already hold. */
  base: sha256Schema.nullable(),
});

export const statusDpRowSchema = z.strictObject({
  packageId: packageIdSchema,
  site: siteCodeSchema,
  dp: shortNameSchema,
  state: dpStateSchema,
  sourceVersion: z.number().int().min(0),
  retryCount: z.number().int().min(0),
  nextAttempt: isoTimeSchema.nullable(),
  lastMessage: messageTextSchema.nullable(),
});
export type StatusDpRow = z.infer<typeof statusDpRowSchema>;

export const statusPayloadSchema = z.strictObject({
  /** Definitions of the sites the rows below name (the sender's subtree), so they can be placed before anything else arrives. */
  sites: z.array(siteNodeSchema).max(10_000),
  /** DP states of the sender's site and of the sites below it. */
  dps: z.array(statusDpRowSchema).max(20_000),
  /** What the sender's own library holds, per package: the base of the next delta. */
  holdings: z.array(z.strictObject({ packageId: packageIdSchema, sourceVersion: z.number().int().min(1), manifest: sha256Schema })).max(20_000),
  /**
   * Versions the sender refused for want of their base (a delta against a
   * version its library no longer holds), and since when: the parent sends
   * them whole. Absent when there are none (a parent of an older build then
   * still reads the report).
   */
  wants: z
    .array(z.strictObject({ packageId: packageIdSchema, sourceVersion: z.number().int().min(1), manifest: sha256Schema, since: isoTimeSchema }))
    .max(20_000)
    .optional(),
  messages: z
    .array(
      z.strictObject({
        time: isoTimeSchema,
        severity: severitySchema,
        component: componentSchema,
        site: siteCodeSchema,
        packageId: packageIdSchema.nullable(),
        text: messageTextSchema,
      }),
    )
    .max(5_000),
});
export type StatusPayload = z.infer<typeof statusPayloadSchema>;

/** Site and DP definitions: up the tree (a site and what lies below it), or down (a DP to create). */
export const sitePayloadSchema = z.strictObject({
  sites: z.array(siteNodeSchema).max(10_000),
  dps: z.array(bundleDpSchema).max(10_000),
  /**
   * Up only: DPs of the sender's subtree reported before and removed since
   * (`dp remove` there), which the parent forgets. Absent when there are none
   * (a parent of an older build then still reads the report).
   */
  removed: z
    .array(z.strictObject({ site: siteCodeSchema, name: shortNameSchema }))
    .max(10_000)
    .optional(),
});
export type SitePayload = z.infer<typeof sitePayloadSchema>;

const common = {
  format: z.literal(BUNDLE_FORMAT),
  id: sendIdSchema,
  from: siteCodeSchema,
  to: siteCodeSchema,
  created: isoTimeSchema,
};

export const bundleHeaderSchema = z.discriminatedUnion('kind', [
  z.strictObject({ ...common, kind: z.literal('package'), package: packageDefinitionSchema, content: contentInfoSchema.nullable() }),
  z.strictObject({ ...common, kind: z.literal('status'), status: statusPayloadSchema }),
  z.strictObject({ ...common, kind: z.literal('site'), site: sitePayloadSchema }),
]);
export type BundleHeader = z.infer<typeof bundleHeaderSchema>;
export type BundleKind = BundleHeader['kind'];
