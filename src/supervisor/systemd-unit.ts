/**
 * systemd units for the two services (`edgectl site install-unit`, `edgectl verifier install-unit`).
 * The daemon runs in the foreground under the Node 22 that runs this command (process.execPath, not
 * a launcher that would sit in between as the main process) and reports readiness with
 * `systemd-notify --ready` (Type=notify; sd-notify.ts), so `systemctl start` returns once the API
 * answers. The sandbox is as tight as the daemon allows: a dedicated user, no capabilities, a
 * read-only system with the data directory as the one writable path, no home directories, private
 * /tmp and devices, IPv4/IPv6/Unix sockets only, the @system-service syscall set. Not set:
 * MemoryDenyWriteExecute (V8's JIT maps writable memory executable and Node aborts under it),
 * PrivateNetwork and IPAddressDeny (both services serve and call out over the network), and
 * ProcSubset=pid (onnxruntime reads /proc/cpuinfo to pick its kernels). `systemd-analyze security`
 * rates these units below 4.0 (test/supervisor/systemd-unit.test.ts checks it).
 */
import { UserError } from '../foundation/errors.js';

export interface UnitSpec {
  description: string;
  /** Absolute documentation URL or file path. */
  documentation: string;
  /** The command line: absolute executable first. */
  exec: string[];
  workingDirectory: string;
  /** The one writable directory (absolute): the site's data directory, the verifier's run dir. */
  dataDir: string;
  user: string;
  /** Loaded if present (`-` prefix): tokens and credentials, kept out of the unit. */
  environmentFile: string;
  /** How long SIGTERM may take (drain plus feedback flush). */
  stopTimeoutSec: number;
}

/** systemd's quoting for ExecStart words: specifiers (%) and variables ($) taken literally. */
export function quoteExecArg(arg: string): string {
  const escaped = arg.replace(/%/g, '%%').replace(/\$/g, '$$$$');
  if (escaped !== '' && !/[\s"'\\;]/.test(escaped)) return escaped;
  return `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

const HOME_DIRS = /^\/(home|root|run\/user)(\/|$)/;
const USER_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;

function checkPaths(spec: UnitSpec): void {
  for (const [what, path] of [
    ['data directory', spec.dataDir],
    ['working directory', spec.workingDirectory],
    ['environment file', spec.environmentFile],
  ] as const) {
    if (!path.startsWith('/')) {
      throw new UserError(`the unit's ${what} must be an absolute path: ${path}`, { code: 'E_UNIT_PATH' });
    }
  }
  if (!USER_NAME.test(spec.user)) {
    throw new UserError(`--user ${spec.user}: not a valid system user name`, {
      code: 'E_UNIT_USER',
      suggestion: 'e.g. --user edgectl (create it with useradd --system)',
    });
  }
}

/**
 * ProtectHome=yes hides /home, /root and /run/user entirely. An install, project or data directory
 * in there needs read-only instead (the data directory stays writable through ReadWritePaths).
 */
function protectHome(spec: UnitSpec): 'yes' | 'read-only' {
  const paths = [spec.dataDir, spec.workingDirectory, ...spec.exec.filter((a) => a.startsWith('/'))];
  return paths.some((p) => HOME_DIRS.test(p)) ? 'read-only' : 'yes';
}

/** StateDirectory= (created and chowned by systemd) when the data directory is under /var/lib. */
function stateDirectory(dataDir: string): string | undefined {
  const m = /^\/var\/lib\/(.+?)\/*$/.exec(dataDir);
  return m?.[1];
}

export function renderUnit(spec: UnitSpec): string {
  checkPaths(spec);
  const state = stateDirectory(spec.dataDir);
  const lines = [
    '[Unit]',
    `Description=${spec.description}`,
    `Documentation=${spec.documentation}`,
    'Wants=network-online.target',
    'After=network-online.target',
    '',
    '[Service]',
    '# Ready once the API answers: the daemon runs systemd-notify --ready (any process of the unit may notify).',
    'Type=notify',
    'NotifyAccess=all',
    `ExecStart=${spec.exec.map(quoteExecArg).join(' ')}`,
    `WorkingDirectory=${spec.workingDirectory}`,
    `EnvironmentFile=-${spec.environmentFile}`,
    '# SIGTERM drains in-flight requests, then flushes what is pending.',
    'KillSignal=SIGTERM',
    `TimeoutStopSec=${spec.stopTimeoutSec}`,
    'TimeoutStartSec=300',
    'Restart=on-failure',
    'RestartSec=5',
    '',
    '# Sandbox. Not MemoryDenyWriteExecute: V8 compiles JavaScript to machine code at run time.',
    `User=${spec.user}`,
    `Group=${spec.user}`,
    ...(state ? [`StateDirectory=${state}`, 'StateDirectoryMode=0700'] : []),
    `ReadWritePaths=${spec.dataDir}`,
    'UMask=0077',
    'NoNewPrivileges=yes',
    'CapabilityBoundingSet=',
    'AmbientCapabilities=',
    'ProtectSystem=strict',
    `ProtectHome=${protectHome(spec)}`,
    'PrivateTmp=yes',
    'PrivateDevices=yes',
    'PrivateUsers=yes',
    'PrivateIPC=yes',
    'ProtectProc=invisible',
    'ProtectKernelTunables=yes',
    'ProtectKernelModules=yes',
    'ProtectKernelLogs=yes',
    'ProtectControlGroups=yes',
    'ProtectClock=yes',
    'ProtectHostname=yes',
    'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX',
    'RestrictNamespaces=yes',
    'RestrictRealtime=yes',
    'RestrictSUIDSGID=yes',
    'LockPersonality=yes',
    'RemoveIPC=yes',
    'KeyringMode=private',
    'DevicePolicy=closed',
    'SystemCallArchitectures=native',
    'SystemCallFilter=@system-service',
    'SystemCallFilter=~@privileged',
    'SystemCallErrorNumber=EPERM',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ];
  return lines.join('\n');
}
