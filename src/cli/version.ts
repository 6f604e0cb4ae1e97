/**
 * What `edgectl version` reports: the package version oclif read from package.json, the Node.js
 * version running the CLI (the project pins Node 22, so this is worth seeing) and the platform.
 */
export interface VersionInfo {
  version: string;
  node: string;
  platform: string;
  arch: string;
}

export function versionInfo(version: string): VersionInfo {
  return { version, node: process.versions.node, platform: process.platform, arch: process.arch };
}
