import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePorts } from './ports.js';
import { findBinary, type RunningServer, startInTempDir, startProcess } from './process.js';

function xmlText(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

// ClickHouse 18.16 (Debian's) still uses <yandex> as the root element; newer servers accept it too.
function serverConfig(dir: string, httpPort: number, tcpPort: number): string {
  const at = (name: string) => xmlText(join(dir, name));
  return `<?xml version="1.0"?>
<yandex>
  <logger>
    <level>warning</level>
    <!-- Also to stderr, so a failed start shows its reason in the thrown error. -->
    <console>1</console>
    <log>${at('clickhouse-server.log')}</log>
    <errorlog>${at('clickhouse-server.err.log')}</errorlog>
  </logger>
  <http_port>${httpPort}</http_port>
  <tcp_port>${tcpPort}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <!-- Shutdown waits out idle keep-alive connections; at 1 s, undici does not even keep them. -->
  <keep_alive_timeout>1</keep_alive_timeout>
  <path>${at('data')}/</path>
  <tmp_path>${at('tmp')}/</tmp_path>
  <user_files_path>${at('user_files')}/</user_files_path>
  <format_schema_path>${at('format_schemas')}/</format_schema_path>
  <users_config>${at('users.xml')}</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <!-- 18.16 refuses to start without it; small, since tests read little. -->
  <mark_cache_size>268435456</mark_cache_size>
</yandex>
`;
}

const USERS_CONFIG = `<?xml version="1.0"?>
<yandex>
  <profiles><default/></profiles>
  <quotas><default/></quotas>
  <users>
    <default>
      <password></password>
      <networks><ip>::/0</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
</yandex>
`;

/** A throwaway ClickHouse with its config, data and logs all in its temp dir. */
export async function startClickHouse(): Promise<RunningServer> {
  const binary = findBinary('clickhouse-server', ['/usr/sbin', '/usr/local/bin']);
  return startInTempDir('clickhouse', async (dir) => {
    const [httpPort, tcpPort] = (await freePorts(2)) as [number, number];
    const configFile = join(dir, 'config.xml');
    await writeFile(configFile, serverConfig(dir, httpPort, tcpPort));
    await writeFile(join(dir, 'users.xml'), USERS_CONFIG);

    const url = `http://127.0.0.1:${httpPort}`;
    const child = await startProcess({
      name: 'clickhouse-server',
      command: binary,
      args: [`--config-file=${configFile}`],
      cwd: dir,
      ready: async () => {
        const response = await fetch(`${url}/ping`, { signal: AbortSignal.timeout(1_000) });
        return (await response.text()).trim() === 'Ok.';
      },
    });
    return { url, port: httpPort, child };
  });
}
