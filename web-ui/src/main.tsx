// Entry point: one API client on the page's origin (the manager serves the dashboard), one live
// store polling it, and the app mounted into #app.
import { render } from 'preact';
import { ApiClient } from './api';
import { App } from './app';
import { LiveStore } from './store';
import 'uplot/dist/uPlot.min.css';
import './style.css';

const api = new ApiClient((input, init) => fetch(input, init));
const store = new LiveStore(api);
store.start();
render(<App api={api} store={store} />, document.getElementById('app')!);
