import { defineSuite } from '../suite.js';

defineSuite('harness', 'migration-saga');
