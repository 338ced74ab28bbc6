import { defineSuite } from '../suite.js';

defineSuite('harness', 'ticketing-saga');
